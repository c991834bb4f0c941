#ifndef CGNUTLS_SHIM_H
#define CGNUTLS_SHIM_H
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>

// Macros Swift cannot import as values.
static inline const char *CGnuTLS_kp_tls_www_client(void) { return GNUTLS_KP_TLS_WWW_CLIENT; }
static inline const char *CGnuTLS_oid_common_name(void) { return GNUTLS_OID_X520_COMMON_NAME; }
static inline const char *CGnuTLS_oid_organization(void) { return GNUTLS_OID_X520_ORGANIZATION_NAME; }
#endif

#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

// Swift cannot call C variadic functions nor format a va_list portably, so every such libmicrohttpd entry point
// used by the HTTPServer module goes through one of these shims.

/// Receives one formatted libmicrohttpd log line (NUL-terminated, possibly truncated, may end in '\n').
typedef void (*CMicroHTTPD_LogSink)(void *context, const char *message);

/// What `CMicroHTTPD_log_trampoline` forwards to. Must outlive the daemon it is given to.
struct CMicroHTTPD_Logger {
    CMicroHTTPD_LogSink sink;
    void *context;
};

/// An `MHD_LogCallback` that formats the message here, where `va_list` is a native type.
static inline void CMicroHTTPD_log_trampoline(void *cls, const char *format, va_list arguments) {
    const struct CMicroHTTPD_Logger *logger = (const struct CMicroHTTPD_Logger *)cls;
    char buffer[1024];
    if (logger == NULL || logger->sink == NULL || format == NULL) {
        return;
    }
    if (vsnprintf(buffer, sizeof buffer, format, arguments) < 0) {
        return;
    }
    logger->sink(logger->context, buffer);
}

/// `MHD_start_daemon` with the callbacks as typed parameters and every other option in `options`, an array
/// terminated by `{MHD_OPTION_END, 0, NULL}` (passed through `MHD_OPTION_ARRAY`). `logger` may be NULL; when given,
/// it is installed first so that start-up messages reach it too. The port argument is 0: the caller passes
/// `MHD_OPTION_LISTEN_SOCKET` or `MHD_OPTION_SOCK_ADDR` in `options`.
static inline struct MHD_Daemon *CMicroHTTPD_start_daemon(
    unsigned int flags,
    MHD_AccessHandlerCallback handler, void *handler_context,
    MHD_RequestCompletedCallback completed, void *completed_context,
    void *(*uri_log)(void *cls, const char *uri, struct MHD_Connection *connection), void *uri_log_context,
    MHD_NotifyConnectionCallback notify_connection, void *notify_connection_context,
    const struct CMicroHTTPD_Logger *logger,
    struct MHD_OptionItem *options
) {
    if (logger != NULL) {
        return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_context,
                                MHD_OPTION_EXTERNAL_LOGGER, &CMicroHTTPD_log_trampoline, (void *)logger,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, completed_context,
                                MHD_OPTION_URI_LOG_CALLBACK, uri_log, uri_log_context,
                                MHD_OPTION_NOTIFY_CONNECTION, notify_connection, notify_connection_context,
                                MHD_OPTION_ARRAY, options,
                                MHD_OPTION_END);
    }
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_context,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, completed_context,
                            MHD_OPTION_URI_LOG_CALLBACK, uri_log, uri_log_context,
                            MHD_OPTION_NOTIFY_CONNECTION, notify_connection, notify_connection_context,
                            MHD_OPTION_ARRAY, options,
                            MHD_OPTION_END);
}

/// The port the daemon listens on (`MHD_DAEMON_INFO_BIND_PORT`), or 0 when libmicrohttpd does not know it.
static inline uint16_t CMicroHTTPD_bound_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

/// The peer address of a connection (`MHD_CONNECTION_INFO_CLIENT_ADDRESS`), or NULL.
static inline const struct sockaddr *CMicroHTTPD_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

/// The connection's socket (`MHD_CONNECTION_INFO_CONNECTION_FD`), or -1.
static inline int CMicroHTTPD_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

/// The connection's GnuTLS session (`gnutls_session_t`), or NULL for a plain-HTTP connection.
static inline void *CMicroHTTPD_tls_session(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return info == NULL ? NULL : info->tls_session;
}

#endif

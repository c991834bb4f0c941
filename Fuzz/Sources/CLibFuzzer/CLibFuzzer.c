// Declarations only (include/CLibFuzzer.h); the driver itself comes from libclang_rt.fuzzer.

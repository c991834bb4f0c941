// FakeNVMLOld: the fake NVML (see ../../FakeNVML/include/fake_nvml.h) built as an old driver's library.
#ifndef FAKE_NVML_OLD_H
#define FAKE_NVML_OLD_H
#endif

import AcceleratorTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under /tmp, removed with everything in it when the test is done.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array("/tmp/accel-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        _ = path.withCString { p in system("rm -rf '" + String(cString: p) + "'") }
    }

    func write(_ relative: String, _ text: String) throws {
        try TestbedWriter.writeAtomically(path + "/" + relative, Array(text.utf8))
    }

    func remove(_ relative: String) {
        _ = system("rm -rf '\(path)/\(relative)'")
    }
}

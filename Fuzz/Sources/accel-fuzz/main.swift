import CLibFuzzer
import FuzzTargets

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// FUZZ_TARGET names the target; `FUZZ_TARGET=list` prints each target's name and -max_len. Everything else on the
// command line is libFuzzer's (corpus folders, -max_total_time=…, or input files to run once).
let name = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? ""
if name == "list" {
    for target in FuzzTargets.all { print(target.name, target.maxLength) }
    exit(0)
}
guard let target = FuzzTargets.named(name) else {
    let message = "accel-fuzz: set FUZZ_TARGET to one of \(FuzzTargets.all.map(\.name).joined(separator: ", ")) (or list)\n"
    _ = message.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
/// Read by the C callback, which cannot capture: set once here, before libFuzzer runs.
nonisolated(unsafe) let selected: FuzzTarget? = target

/// One input. A finding (a broken invariant) is a crash, so that libFuzzer keeps the input as an artifact. Also
/// the conventional entry point, which libFuzzer's own main (linked, but not the one that runs) refers to.
@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    do {
        try selected!.run(UnsafeRawBufferPointer(start: data, count: size))
    } catch {
        fatalError("\(selected!.name): \(error)")
    }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in testOneInput(data, size) })

/// libFuzzer entry point for `ExpositionParser`, compiled into one module with the Exposition sources by
/// `Fuzz/run-exposition-fuzzer.sh` (kept out of the package so `swift build`/CI never see it).
///
/// Every input is parsed in both formats. Parsing may fail but must not crash, hang or trip ASan; when it
/// succeeds, the families must satisfy the encoder's invariants (its debug assertions are kept on), and
/// encoding, re-parsing and re-encoding must give the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func exposition_fuzz_one_input(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    for format in ExpositionFormat.allCases {
        guard let families = try? ExpositionParser.parse(bytes, format: format) else { continue }
        var first: [UInt8] = []
        ExpositionEncoder.encode(families, format: format, into: &first)
        let reparsed: [MetricFamily]
        do {
            reparsed = try ExpositionParser.parse(first, format: format)
        } catch {
            fatalError("re-encoded exposition does not parse (\(format)): \(error)")
        }
        var second: [UInt8] = []
        ExpositionEncoder.encode(reparsed, format: format, into: &second)
        if first != second {
            let once = String(decoding: first.prefix(4000), as: UTF8.self)
            let twice = String(decoding: second.prefix(4000), as: UTF8.self)
            fatalError("re-encoding is not stable (\(format)):\n--- once\n\(once)\n--- twice\n\(twice)")
        }
    }
    return 0
}

internal import CNVML

/// An NVML return code, named as nvml.h names it.
public struct NVMLReturn: Sendable, Equatable, CustomStringConvertible {
    /// The raw `nvmlReturn_t`.
    public var code: Int32
    /// Any value; unknown ones print as `NVML error N`.
    public init(_ code: Int32) { self.code = code }

    /// `NVML_SUCCESS`.
    public static let success = NVMLReturn(0)
    /// The device or driver lacks the query: see ``meansUnavailable``.
    public static let notSupported = NVMLReturn(3)
    /// The caller may not read it: see ``meansUnavailable``.
    public static let noPermission = NVMLReturn(4)
    /// A field value the device does not have; treated like ``meansUnavailable`` for field values.
    public static let notFound = NVMLReturn(6)
    /// A list outgrew the buffer (running processes): ask again with a larger one.
    public static let insufficientSize = NVMLReturn(7)
    /// `nvmlInit` found no kernel driver: the node has no usable NVIDIA GPU.
    public static let driverNotLoaded = NVMLReturn(9)
    /// No event within the wait (XID watcher): normal, not an error.
    public static let timeout = NVMLReturn(10)
    /// The driver does not implement the call: see ``meansUnavailable``.
    public static let functionNotFound = NVMLReturn(13)
    /// The GPU fell off the bus: see ``meansDeviceLost``.
    public static let gpuIsLost = NVMLReturn(15)
    /// The GPU needs a reset before it answers again: see ``meansDeviceLost``.
    public static let resetRequired = NVMLReturn(16)
    /// `NVML_ERROR_NO_DATA`; no special handling.
    public static let noData = NVMLReturn(21)
    /// The GPU is no longer there: see ``meansDeviceLost``.
    public static let gpuNotFound = NVMLReturn(28)

    static let names: [Int32: String] = [
        0: "SUCCESS", 1: "UNINITIALIZED", 2: "INVALID_ARGUMENT", 3: "NOT_SUPPORTED", 4: "NO_PERMISSION",
        5: "ALREADY_INITIALIZED", 6: "NOT_FOUND", 7: "INSUFFICIENT_SIZE", 8: "INSUFFICIENT_POWER",
        9: "DRIVER_NOT_LOADED", 10: "TIMEOUT", 11: "IRQ_ISSUE", 12: "LIBRARY_NOT_FOUND", 13: "FUNCTION_NOT_FOUND",
        14: "CORRUPTED_INFOROM", 15: "GPU_IS_LOST", 16: "RESET_REQUIRED", 17: "OPERATING_SYSTEM",
        18: "LIB_RM_VERSION_MISMATCH", 19: "IN_USE", 20: "MEMORY", 21: "NO_DATA", 25: "ARGUMENT_VERSION_MISMATCH",
        26: "DEPRECATED", 27: "NOT_READY", 28: "GPU_NOT_FOUND", 29: "INVALID_STATE", 999: "UNKNOWN",
    ]

    /// `NVML_ERROR_GPU_IS_LOST`-style name (without the prefix), or the number.
    public var description: String { Self.names[code] ?? "NVML error \(code)" }

    /// The device is gone (fell off the bus, needs a reset): mark it down and re-probe it.
    public var meansDeviceLost: Bool { self == .gpuIsLost || self == .gpuNotFound || self == .resetRequired }
    /// The value does not exist on this device (or we may not read it): absent, logged once, not asked again.
    public var meansUnavailable: Bool { self == .notSupported || self == .noPermission || self == .functionNotFound }
}

/// libnvidia-ml loaded with dlopen, every entry point resolved once.
///
/// The exporter never links NVML: a node without the NVIDIA driver just has no library, and the `nvidia` collector
/// reports that instead of the process failing to start. One instance per process: NVML's state is global.
final class NVMLLibrary: @unchecked Sendable {
    let path: String
    let fn: CNVMLFunctions
    /// Entry points the library lacks (old drivers); the values behind them are simply absent.
    let missingSymbols: [String]

    enum LoadError: Error, CustomStringConvertible {
        case notFound(path: String, reason: String)
        case missingRequired(path: String, symbols: [String])
        case initFailed(path: String, NVMLReturn, String)

        var description: String {
            switch self {
            case .notFound(let path, let reason):
                // dlerror() already starts with the path.
                "cannot load \(path): \(reason.hasPrefix(path + ": ") ? String(reason.dropFirst(path.count + 2)) : reason)"
            case .missingRequired(let path, let symbols): "\(path) is not a usable NVML: missing \(symbols.joined(separator: ", "))"
            case .initFailed(let path, let code, let text): "nvmlInit_v2 (\(path)) failed: \(code) (\(text))"
            }
        }

        /// No NVIDIA driver on this node at all, as opposed to a broken one.
        var isAbsent: Bool {
            switch self {
            case .notFound: true
            case .initFailed(_, let code, _): code == .driverNotLoaded
            case .missingRequired: false
            }
        }
    }

    /// Entry points without which nothing can be read.
    static let required = ["nvmlInit_v2", "nvmlDeviceGetCount_v2", "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetUUID"]

    private init(path: String, fn: CNVMLFunctions) {
        self.path = path
        self.fn = fn
        var missing: [String] = []
        var copy = fn
        while let name = CNVML_missingSymbol(&copy, missing.count) { missing.append(String(cString: name)) }
        missingSymbols = missing
    }

    /// Opens and initializes NVML. Safe to call again after a failure (the driver may appear later, e.g. when the
    /// GPU operator installs it after this DaemonSet started).
    static func load(path: String) throws(LoadError) -> NVMLLibrary {
        var fn = CNVMLFunctions()
        var error = [CChar](repeating: 0, count: 512)
        guard CNVML_open(path, &fn, &error, error.count) != nil else {
            throw .notFound(path: path, reason: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        let library = NVMLLibrary(path: path, fn: fn)
        let lacking = required.filter(library.missingSymbols.contains)
        guard lacking.isEmpty, let initialize = fn.nvmlInit_v2 else {
            throw .missingRequired(path: path, symbols: lacking)
        }
        let rc = NVMLReturn(initialize())
        guard rc == .success else { throw .initFailed(path: path, rc, library.errorString(rc)) }
        return library
    }

    func errorString(_ rc: NVMLReturn) -> String {
        guard let text = fn.nvmlErrorString?(rc.code) else { return rc.description }
        return String(cString: text)
    }

    /// Reads a C string NVML writes into a caller buffer.
    func string(_ call: (UnsafeMutablePointer<CChar>, UInt32) -> Int32, capacity: Int = 96) -> (NVMLReturn, String?) {
        var buffer = [CChar](repeating: 0, count: capacity)
        let rc = NVMLReturn(buffer.withUnsafeMutableBufferPointer { call($0.baseAddress!, UInt32(capacity)) })
        guard rc == .success else { return (rc, nil) }
        buffer[capacity - 1] = 0
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingWhitespace()
        return (rc, text.isEmpty ? nil : text)
    }
}

/// The adapter's version, reported by `--version`.
public enum AdapterVersion {
    public static let version = "0.1.0"
}

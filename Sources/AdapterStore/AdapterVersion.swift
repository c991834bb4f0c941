/// The adapter's version, reported by `--version`.
public enum AdapterVersion {
    /// Also in the started log line.
    public static let version = "0.1.0"
}

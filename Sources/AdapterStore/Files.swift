import ConfigYAML

/// Reads a whole file (configuration, credentials); at most `limit` bytes.
package func readWholeFile(_ path: String, limit: Int = 16 << 20) throws(AdapterError) -> [UInt8] {
    do {
        return try ConfigFile.read(path, limit: limit)
    } catch {
        throw AdapterError(code: .fileUnreadable, message: error.description, systemErrno: error.errno)
    }
}

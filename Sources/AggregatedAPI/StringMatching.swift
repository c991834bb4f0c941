import AdapterStore

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count && lowercased() == other.lowercased()
    }

    func trimmingASCIISpace() -> String {
        String(Substring(self).trimmingASCIISpaces())
    }
}

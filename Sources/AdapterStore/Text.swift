extension Substring {
    /// Without leading and trailing spaces, tabs and newlines (flag lists, header values).
    package func trimmingASCIISpaces() -> Substring {
        var slice = self
        while slice.first == " " || slice.first == "\t" || slice.first == "\n" { slice = slice.dropFirst() }
        while slice.last == " " || slice.last == "\t" || slice.last == "\n" { slice = slice.dropLast() }
        return slice
    }
}

import CFloorProbe

// The static Swift runtime and standard library, nothing else: a dictionary built, the memory read.
var dictionary: [String: Int] = [:]
for i in 0..<100 { dictionary["key\(i)"] = i }
precondition(dictionary.count == 100)
floor_report("bare")

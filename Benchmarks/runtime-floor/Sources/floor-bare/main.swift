import CFloorProbe

// The static Swift runtime and standard library, nothing else: a dictionary built, the memory read.
var dictionary: [String: Int] = [:]
for i in 0..<100 { dictionary["key\(i)"] = i }
var hwm = 0, rss = 0
floor_memory(&hwm, &rss)
print("bare hwm_kib=\(hwm) rss_kib=\(rss) keys=\(dictionary.count)")

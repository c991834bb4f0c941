import CFloorProbe
import FoundationEssentials

// The runtime plus FoundationEssentials, used as the exporter uses it (JSON, Data, Date).
struct Pod: Codable { var name: String; var labels: [String: String] }
let pod = try JSONDecoder().decode(Pod.self, from: Data(#"{"name":"p","labels":{"app":"x"}}"#.utf8))
var hwm = 0, rss = 0
floor_memory(&hwm, &rss)
print("essentials hwm_kib=\(hwm) rss_kib=\(rss) pod=\(pod.name) clock=\(Date().timeIntervalSince1970 > 0)")

import CFloorLibraries
import CFloorProbe
import FoundationEssentials

// The runtime, FoundationEssentials, and accel-exporter's system libraries loaded and libcurl initialised; then the
// exporter's start-up trim. What any exporter built on this stack holds before it samples or serves anything.
struct Pod: Codable { var name: String; var labels: [String: String] }
let pod = try JSONDecoder().decode(Pod.self, from: Data(#"{"name":"p","labels":{"app":"x"}}"#.utf8))
let curl = floor_load_libraries()
var hwm = 0, rss = 0
floor_memory(&hwm, &rss)
print("libraries hwm_kib=\(hwm) rss_kib=\(rss) curl=\(curl) pod=\(pod.name)")
floor_page_out()
floor_memory(&hwm, &rss)
print("trimmed hwm_kib=\(hwm) rss_kib=\(rss)")

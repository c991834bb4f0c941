import CFloorDeferred
import CFloorProbe
import FoundationEssentials

// The runtime and FoundationEssentials, trimmed, and only then the exporter's system libraries loaded with dlopen:
// the lowest peak this stack allows when the libraries' relocation does not stack on the runtime's.
struct Pod: Codable { var name: String; var labels: [String: String] }
let pod = try JSONDecoder().decode(Pod.self, from: Data(#"{"name":"p","labels":{"app":"x"}}"#.utf8))
floor_page_out()
let failed = floor_load_libraries_deferred()
var hwm = 0, rss = 0
floor_memory(&hwm, &rss)
print("deferred hwm_kib=\(hwm) rss_kib=\(rss) failed=\(failed) pod=\(pod.name)")
floor_page_out()
floor_memory(&hwm, &rss)
print("deferred-trimmed hwm_kib=\(hwm) rss_kib=\(rss)")

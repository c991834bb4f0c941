import CFloorDeferred
import CFloorProbe
import FoundationEssentials

// The runtime and FoundationEssentials, trimmed, and only then the exporter's system libraries loaded with dlopen:
// the lowest peak this stack allows when the libraries' relocation does not stack on the runtime's.
struct Pod: Codable { var name: String; var labels: [String: String] }
let pod = try JSONDecoder().decode(Pod.self, from: Data(#"{"name":"p","labels":{"app":"x"}}"#.utf8))
floor_page_out()
precondition(pod.name == "p" && floor_load_libraries_deferred() == 0, "a library or curl_global_init failed")
floor_report("deferred")
floor_page_out()
floor_report("deferred-trimmed")

import CFloorLibraries
import CFloorProbe
import FoundationEssentials

// The runtime, FoundationEssentials, and accel-exporter's system libraries loaded and libcurl initialised; then the
// exporter's start-up trim. What any exporter built on this stack holds before it samples or serves anything.
struct Pod: Codable { var name: String; var labels: [String: String] }
let pod = try JSONDecoder().decode(Pod.self, from: Data(#"{"name":"p","labels":{"app":"x"}}"#.utf8))
precondition(pod.name == "p" && floor_load_libraries() == 0, "a library or curl_global_init failed")
floor_report("libraries")
floor_page_out()
floor_report("trimmed")

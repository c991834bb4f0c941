import CFloorProbe
import FoundationEssentials

// The runtime plus FoundationEssentials, used as the exporter uses it (JSON, Data, Date).
struct Pod: Codable { var name: String; var labels: [String: String] }
let pod = try JSONDecoder().decode(Pod.self, from: Data(#"{"name":"p","labels":{"app":"x"}}"#.utf8))
precondition(pod.name == "p" && Date().timeIntervalSince1970 > 0)
floor_report("essentials")

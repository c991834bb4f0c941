/// Short model names for AMD PCI device ids, so the `model` label reads `MI300X` rather than a FRU string that
/// differs between board vendors. Unknown ids fall back to `product_name`, then the hex id.
///
/// Every entry is the pci.ids database's name for the id (pciutils/pciids, 2026-08). Where the database gives
/// several products for one id (Navi 21 is the RX 6800, 6800 XT and 6900 XT), the name lists them all: the id alone
/// does not tell them apart, and a name guessed from it would be wrong on the other cards; where it names only the
/// chip (0x15BF `Phoenix1`), the chip. Ids the database does not name (the MI350-series virtual functions, 0x7410)
/// are left out, so their FRU `product_name` names them.
enum AMDModels {
    static func name(deviceID: UInt32) -> String? { table[deviceID] }

    private static let table: [UInt32: String] = [
        0x738C: "MI100", 0x738E: "MI100",
        0x7408: "MI250X", 0x740C: "MI250X/MI250", 0x740F: "MI210",
        0x74A0: "MI300A", 0x74A1: "MI300X", 0x74A2: "MI308X", 0x74A5: "MI325X", 0x74A9: "MI300X-HF", 0x74BD: "MI300X-HF",
        0x74B5: "MI300X-VF", 0x74B9: "MI325X-VF",
        0x75A0: "MI350X", 0x75A3: "MI355X", 0x75A8: "MI350P",
        0x744C: "Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M", 0x7448: "Radeon Pro W7900",
        0x73BF: "Radeon RX 6800/6800 XT/6900 XT",
        0x73A1: "Radeon Pro V620", 0x7461: "Radeon Pro V710",
        0x1681: "Radeon 680M", 0x150E: "Radeon 880M/890M", 0x15BF: "Phoenix1", 0x164E: "Raphael",
    ]
}

/// Intel GPU and Gaudi test nodes: sysfs trees plus, for the Intel ones, a fake /proc with DRM clients at two
/// sampling points one second apart (`procfs(step:)`), so engine-utilization deltas have exact expected values.
extension FixtureNodes {
    public static let intelGaudiNames = ["arc-a770", "max-1550", "bmg-b580", "gaudi2-8", "gaudi3-8"]

    public static func intelGaudiTree(named name: String) -> FixtureTree? {
        switch name {
        case "arc-a770": return arcA770()
        case "max-1550": return max1550()
        case "bmg-b580": return bmgB580()
        case "gaudi2-8": return gaudi2x8()
        case "gaudi3-8": return gaudi3x8()
        default: return nil
        }
    }

    // MARK: Intel Arc (i915)

    /// A desktop with an Arc A770 (i915, card1, with its i915 hwmon chip: energy, power limits, no power input)
    /// next to the CPU's integrated GPU (i915, card0, no hwmon, its GT asleep at 0 MHz).
    public static func arcA770() -> FixtureTree {
        var igpu = IntelCardFixture(card: 0, pciAddress: "0000:00:02.0", parentPath: "pci0000:00", driver: .i915, deviceID: 0xA780)
        igpu.gts = [.init(number: 0, actualMHz: 0, requestedMHz: 300)]
        var arc = IntelCardFixture(card: 1, pciAddress: "0000:03:00.0", parentPath: "pci0000:00/0000:00:01.0", driver: .i915, deviceID: 0x56A0)
        arc.gts = [.init(number: 0, actualMHz: 2100, requestedMHz: 2400)]
        arc.hwmon = HwmonFixture(index: 3, name: "i915", attributes: [
            "energy1_input": "123456789000", "power1_max": "190000000", "power1_rated_max": "225000000",
            "power1_crit": "400000000", "power1_max_interval": "28", "curr1_crit": "400000", "in0_input": "1030",
        ])
        return FixtureTree(devices: igpu.devices() + arc.devices())
    }

    /// DRM clients on the Arc node. Between step 0 and step 1 (1 s): on the A770, client 7 (PIDs 3001, fds 5 and 9)
    /// adds 0.5 s render, 0.1 s copy and 2 s compute over 4 engines; client 8 (PID 3002) adds 1 s video over 2
    /// engines and 0.25 s render; client 9 (PID 3004) exits; client 10 (PID 3006) appears (no interval yet). On
    /// the iGPU, client 1 (PID 3003) adds 0.2 s render. PID 3005 is an amdgpu client: not Intel's.
    /// Expected at step 1 — A770: gfx 0.75, copy 0.1, compute 0.5, video 0.5, video_enhance 0, utilization 0.75,
    /// VRAM (3072 + 512 + 256) MiB; iGPU: gfx 0.2, utilization 0.2, no VRAM.
    public static func arcA770Procfs(step: Int) -> ProcFixture {
        let a770 = "0000:03:00.0", igpu = "0000:00:02.0"
        let s = UInt64(step)
        let game = ProcFixture.i915(clientID: 7, pdev: a770,
                                    engines: [("render", 10_000_000_000 + s * 500_000_000), ("copy", 1_000_000_000 + s * 100_000_000),
                                              ("video", 0), ("video-enhance", 0), ("compute", 4_000_000_000 + s * 2_000_000_000)],
                                    capacities: ["video": 2, "compute": 4], localResidentMiB: step == 0 ? 2048 : 3072, systemResidentMiB: 16)
        let encoder = ProcFixture.i915(clientID: 8, pdev: a770, engines: [("render", s * 250_000_000), ("video", 5_000_000_000 + s * 1_000_000_000)],
                                       capacities: ["video": 2], localResidentMiB: 512)
        var processes = [
            ProcFixture.Process(pid: 3001, comm: "game", fdinfo: [5: game, 9: game, 0: "pos:\t0\nflags:\t02\nmnt_id:\t20\n"]),
            ProcFixture.Process(pid: 3002, comm: "ffmpeg", fdinfo: [4: encoder]),
            ProcFixture.Process(pid: 3003, comm: "compositor", fdinfo: [
                12: ProcFixture.i915(clientID: 1, pdev: igpu, engines: [("render", 1_000_000_000 + s * 200_000_000)], systemResidentMiB: 64),
            ]),
            ProcFixture.Process(pid: 3005, comm: "amd", fdinfo: [
                3: "drm-driver:\tamdgpu\ndrm-client-id:\t42\ndrm-pdev:\t0000:05:00.0\ndrm-engine-gfx:\t\(s * 900_000_000) ns\n",
            ]),
        ]
        if step == 0 {
            processes.append(.init(pid: 3004, comm: "exiting", fdinfo: [
                7: ProcFixture.i915(clientID: 9, pdev: a770, engines: [("render", 77_000_000_000)], localResidentMiB: 1024),
            ]))
        } else {
            processes.append(.init(pid: 3006, comm: "starting", fdinfo: [
                6: ProcFixture.i915(clientID: 10, pdev: a770, engines: [("render", 50_000_000_000)], localResidentMiB: 256),
            ]))
        }
        return ProcFixture(processes: processes)
    }

    // MARK: Intel Data Center GPU Max (xe)

    /// Two Data Center GPU Max 1550 cards under xe, each with two tiles (GTs 0 and 1), 64 GiB of VRAM per tile and
    /// an xe hwmon chip (card and package energy and limits, package and VRAM temperatures).
    public static func max1550() -> FixtureTree {
        var tree = FixtureTree()
        for (i, (pci, port)) in [("0000:29:00.0", "0000:00:01.0"), ("0000:9a:00.0", "0000:00:03.0")].enumerated() {
            var card = IntelCardFixture(card: i, pciAddress: pci, parentPath: "pci0000:00/\(port)", driver: .xe, deviceID: 0x0BD5)
            card.pciClass = "0x038000"
            card.gts = [.init(number: 0, tile: 0, actualMHz: 1600 - 50 * i, requestedMHz: 1600),
                        .init(number: 1, tile: 1, actualMHz: 1550, requestedMHz: 1600)]
            card.vramBytesPerTile = 68_719_476_736
            card.hwmon = HwmonFixture(index: 5 + i, name: "xe", attributes: [
                "power1_label": "card", "power1_max": "600000000", "power1_rated_max": "600000000",
                "energy1_label": "card", "energy1_input": "\(987_654_321_000 + i * 1_000_000)",
                "power2_label": "pkg", "power2_max": "500000000", "energy2_label": "pkg", "energy2_input": "\(876_543_210_000 + i)",
                "temp2_label": "pkg", "temp2_input": "\(45000 + i * 1000)", "temp3_label": "vram", "temp3_input": "52000",
            ])
            tree.devices += card.devices()
        }
        return tree
    }

    /// DRM clients on the Max node. Between step 0 and step 1: card 0's client 3 (PID 4001) adds 3e9 busy cycles
    /// on ccs over 1e9 total cycles with 4 engines, and 2e8 on bcs over 1e9; card 1's client 5 (PID 4002) adds 4e8
    /// ccs cycles over 1e9. Expected at step 1 — card 0: compute 0.75, copy 0.2, utilization 0.75, VRAM 8 GiB;
    /// card 1: compute 0.1, utilization 0.1, VRAM 1 GiB.
    public static func max1550Procfs(step: Int) -> ProcFixture {
        let s = UInt64(step)
        let total = 10_000_000_000 + s * 1_000_000_000
        return ProcFixture(processes: [
            .init(pid: 4001, comm: "python3", fdinfo: [
                9: ProcFixture.xe(clientID: 3, pdev: "0000:29:00.0",
                                  cycles: [("bcs", s * 200_000_000, total), ("ccs", 1_000_000_000 + s * 3_000_000_000, total)],
                                  capacities: ["ccs": 4], vramResidentKiB: 8 << 20),
            ]),
            .init(pid: 4002, comm: "python3", fdinfo: [
                9: ProcFixture.xe(clientID: 5, pdev: "0000:9a:00.0", cycles: [("ccs", s * 400_000_000, total)],
                                  capacities: ["ccs": 4], vramResidentKiB: 1 << 20),
            ]),
        ])
    }

    // MARK: Intel Arc B580 (xe, Battlemage)

    /// A desktop with an Arc B580 (Battlemage G21, 8086:e20b) under xe beside the CPU's Arrow Lake-S integrated GPU
    /// (8086:7d67, i915). The B580 is laid out as newer kernels do: no `tile0/physical_vram_size_bytes`, its VRAM
    /// size only in the root cgroup's `dmem.capacity`; a main GT (gt0) and a media GT (gt1) on tile 0; an xe hwmon
    /// chip with card and package energy, package and VRAM temperatures and a fan.
    public static func bmgB580() -> FixtureTree {
        var igpu = IntelCardFixture(card: 0, pciAddress: "0000:00:02.0", parentPath: "pci0000:00", driver: .i915, deviceID: 0x7D67)
        igpu.gts = [.init(number: 0, actualMHz: 0, requestedMHz: 300)]
        var b580 = IntelCardFixture(card: 1, pciAddress: "0000:03:00.0", parentPath: "pci0000:00/0000:00:01.0", driver: .xe, deviceID: 0xE20B)
        b580.gts = [.init(number: 0, tile: 0, actualMHz: 2850, requestedMHz: 2850), .init(number: 1, tile: 0, actualMHz: 1200, requestedMHz: 1200)]
        b580.vramBytesPerTile = 12_717_129_728
        b580.vramInDmemCgroup = true
        b580.hwmon = HwmonFixture(index: 4, name: "xe", attributes: [
            "power1_label": "card", "power1_max": "190000000", "power1_rated_max": "190000000",
            "energy1_label": "card", "energy1_input": "55555000000",
            "power2_label": "pkg", "power2_max": "150000000", "energy2_label": "pkg", "energy2_input": "44444000000",
            "temp2_label": "pkg", "temp2_input": "48000", "temp3_label": "vram", "temp3_input": "56000",
            "fan1_input": "1350",
        ])
        // Another device's region and the system-memory pool stay out of the card's sum.
        let dmem = "drm/0000:00:02.0/mapped 16777216000\n" + b580.dmemCapacityLines + "drm/0000:0a:00.0/vram0 999\n"
        return FixtureTree(devices: igpu.devices() + b580.devices(), files: ["fs/cgroup/dmem.capacity": dmem])
    }

    /// DRM clients on the B580 node. Between step 0 and step 1: client 11 (PID 5001) adds 6e8 busy ccs cycles over
    /// 1e9 total and 1e8 bcs cycles. Expected at step 1 — B580: compute 0.6, copy 0.1, utilization 0.6, VRAM 2 GiB.
    public static func bmgB580Procfs(step: Int) -> ProcFixture {
        let s = UInt64(step)
        let total = 20_000_000_000 + s * 1_000_000_000
        return ProcFixture(processes: [
            .init(pid: 5001, comm: "llama-server", fdinfo: [
                7: ProcFixture.xe(clientID: 11, pdev: "0000:03:00.0",
                                  cycles: [("bcs", s * 100_000_000, total), ("ccs", 2_000_000_000 + s * 600_000_000, total)],
                                  vramResidentKiB: 2 << 20),
            ]),
        ])
    }

    // MARK: Gaudi 2 (habanalabs)

    /// `$FAKE_HABANA_INFO` for `gaudi2x8`: device N at 10·N+5 % utilization, with 96 GiB of DRAM of which 48 GiB
    /// plus N GiB are free.
    public static var gaudiDriverInfo: String { gaudiDriverInfo(hwIPInfoFailures: [:]) }

    /// As `gaudiDriverInfo`, with device N's first `hwIPInfoFailures[N]` HW_IP_INFO calls failing (EBUSY).
    public static func gaudiDriverInfo(hwIPInfoFailures: [Int: Int]) -> String {
        (0..<8).map { index in
            let fails = hwIPInfoFailures[index].map { ",\($0)" } ?? ""
            return "accel_controlD\(index)=\(10 * index + 5),\(96 << 30),\((48 << 30) + (index << 30))\(fails)"
        }.joined(separator: ";")
    }

    /// Eight Gaudi2 devices (accel0…7) with the accel driver's layout — PCI device with habanalabs' attributes, an
    /// `accel/accelN` compute entry and an `accel/accel_controlDN` control entry — and each device's hwmon chip on
    /// the PCI device, named after the firmware's card name, with unlabelled temperatures and power input.
    /// Device 3 is `in reset`. The control nodes exist under /dev; what their INFO ioctls answer comes from
    /// `gaudiDriverInfo` through the FakeHabanaIoctl library.
    public static func gaudi2x8() -> FixtureTree { gaudiNode(deviceType: "GAUDI2", pciDevice: 0x1020, chip: "HL-225") }

    /// Eight Gaudi3 devices laid out as `gaudi2x8` (device 3 in reset, the same control nodes and INFO answers),
    /// with Intel's out-of-tree driver's `device_type` `GAUDI3` and PCI id 1da3:1060. The hwmon chip's name is the
    /// firmware's card name: `HL-325L` here **[UNVERIFIED]** (no Gaudi3 firmware was read); nothing exports it.
    public static func gaudi3x8() -> FixtureTree { gaudiNode(deviceType: "GAUDI3", pciDevice: 0x1060, chip: "HL-325L") }

    static func gaudiNode(deviceType: String, pciDevice: UInt32, chip: String) -> FixtureTree {
        let device = String(pciDevice, radix: 16)
        var devices: [FixtureDevice] = []
        for index in 0..<8 {
            let bus = [0x19, 0x1a, 0x33, 0x34, 0x9a, 0x9b, 0xb3, 0xb4][index]
            let pci = "0000:" + hex2(bus) + ":00.0"
            let pciPath = "/devices/pci0000:00/0000:00:0\(index / 2 + 1).\(index % 2)/\(pci)"
            devices.append(FixtureDevice(
                path: pciPath,
                properties: [("DRIVER", "habanalabs"), ("PCI_CLASS", "120000"), ("PCI_ID", "1DA3:" + device.uppercased()), ("PCI_SLOT_NAME", pci), ("SUBSYSTEM", "pci")],
                attributes: [
                    "vendor": .text("0x1da3\n"), "device": .text("0x\(device)\n"), "class": .text("0x120000\n"),
                    "device_type": .text(deviceType + "\n"), "status": .text(index == 3 ? "in reset\n" : "operational\n"),
                    "clk_cur_freq_mhz": .text("\(1400 + 20 * index)\n"), "clk_max_freq_mhz": .text("1800\n"),
                    "max_power": .text("600000\n"), "hard_reset_cnt": .text(index == 3 ? "1\n" : "0\n"),
                    "soft_reset_cnt": .text("\(index % 3)\n"), "module_id": .text("\(index)\n"), "pci_addr": .text(pci + "\n"),
                ],
                links: ["driver": "../../../../bus/pci/drivers/habanalabs"]))
            devices.append(FixtureDevice(
                path: pciPath + "/accel/accel\(index)", properties: [("DEVNAME", "accel/accel\(index)"), ("SUBSYSTEM", "accel")],
                attributes: ["dev": .text("261:\(index)\n")], links: ["device": "../../../\(pci)"]))
            devices.append(FixtureDevice(
                path: pciPath + "/accel/accel_controlD\(index)", properties: [("DEVNAME", "accel/accel_controlD\(index)"), ("SUBSYSTEM", "accel")],
                attributes: ["dev": .text("510:\(index)\n")], links: ["device": "../../../\(pci)"],
                node: "accel/accel_controlD\(index)"))
            devices.append(HwmonFixture(index: 10 + index, name: chip, attributes: [
                "temp1_input": "\(31000 + 1000 * index)", "temp2_input": "\(38000 + 500 * index)", "temp3_input": "29000",
                "power1_input": "\(180_000_000 + 10_000_000 * index)", "power1_input_highest": "410000000",
            ]).device(parentPath: pciPath, pciAddress: pci))
        }
        return FixtureTree(devices: devices)
    }
}

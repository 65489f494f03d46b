//! Discovery on fake sysfs trees.

use super::*;
use crate::mover::dsa::emu::{sysfs, EmuConfig, Kernel};
use crate::mover::dsa::testutil::TempDir;
use std::path::Path;

fn put(dir: &Path, name: &str, v: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), format!("{v}\n")).unwrap();
}

fn paths(t: &TempDir) -> Paths {
    Paths {
        sysfs: t.path().join("sys"),
        dev: t.path().join("dev"),
    }
}

#[test]
fn env_overrides_paths() {
    let d = Paths::from_lookup(|_| None);
    assert_eq!(d.sysfs, PathBuf::from("/sys/bus/dsa/devices"));
    assert_eq!(d.dev, PathBuf::from("/dev/dsa"));
    let o = Paths::from_lookup(|k| match k {
        "MINIASYNC_DSA_SYSFS" => Some("/tmp/fake/sys".into()),
        "MINIASYNC_DSA_DEV" => Some("/tmp/fake/dev".into()),
        _ => None,
    });
    assert_eq!(o.sysfs, PathBuf::from("/tmp/fake/sys"));
    assert_eq!(o.dev, PathBuf::from("/tmp/fake/dev"));
    // Empty values fall back to the defaults.
    assert_eq!(Paths::from_lookup(|_| Some(String::new())), d);
}

/// The Sapphire Rapids `op_cap` (opcodes 0x00-0x09, 0x10-0x15, 0x20) as
/// each kernel generation prints it (DSA.md 12.1).
const SPR_5_6: &str = "0x1003f03ff";
const SPR_5_12: &str = "0x1003f03ff 0x0 0x0 0x0";
const SPR_6_1: &str = "00000000,00000000,00000000,00000000,00000000,00000001,003f03ff";

fn spr_ops() -> OpCap {
    let mut ops: Vec<u8> = (0..=9).chain(0x10..=0x15).collect();
    ops.push(0x20);
    OpCap::of(&ops)
}

#[test]
fn op_cap_of_every_kernel_generation_parses_to_the_same_set() {
    // 6.1+: eight 32-bit words, most significant first (one is missing
    // above on purpose: the full text has eight).
    let six_one = format!("00000000,{SPR_6_1}");
    for text in [SPR_5_6, SPR_5_12, six_one.as_str()] {
        assert_eq!(OpCap::parse(text), Some(spr_ops()), "{text:?}");
        assert_eq!(OpCap::parse(&format!("{text}\n")), Some(spr_ops()));
    }
    // The kernel's %#llx prints 0 as "0x0"; a C library prints "0".
    assert_eq!(OpCap::parse("0x1003f03ff 0 0 0"), Some(spr_ops()));
    // High words land where they belong in each format.
    let high = OpCap::of(&[0, 64, 0x80, 0xff]);
    assert_eq!(OpCap::parse("0x1 0x1 0x1 0x8000000000000000"), Some(high));
    assert_eq!(
        OpCap::parse("80000000,00000000,00000000,00000001,00000000,00000001,00000000,00000001"),
        Some(high)
    );
    // 5.6 to early 5.11: one word, the low 64 opcodes.
    assert_eq!(OpCap::parse("0x1b"), Some(OpCap::of(&[0, 1, 3, 4])));
    assert_eq!(OpCap::of(&[1, 3]).without(1), OpCap::of(&[3]));
    assert_eq!(OpCap::ALL.and(OpCap::of(&[0x20])), OpCap::of(&[0x20]));
}

#[test]
fn formats_no_kernel_printed_are_rejected() {
    for text in [
        // Four comma-separated 64-bit words: no kernel printed this.
        "0x0,0x0,0x1,0x10000001f",
        // Eight words with a word wider than 32 bits.
        "1ffffffff,0,0,0,0,0,0,0",
        // Wrong word counts, mixed separators, junk.
        "1,2,3,4,5",
        "0x1 0x0 0x0",
        "0x1 0x0 0x0 0x0 0x0",
        "0x1,0x0 0x0,0x0",
        "0x10000000000000000",
        "nonsense",
        "",
        "0x",
        "00000000,,00000000,00000000,00000000,00000000,00000000,00000001",
    ] {
        assert_eq!(OpCap::parse(text), None, "{text:?}");
    }
}

#[test]
fn unreadable_op_cap_assumes_the_dsa_1_0_baseline() {
    let t = TempDir::new("sysfs-baseline");
    let p = paths(&t);
    let cfg = EmuConfig::default();
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 0).unwrap();
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 1, 0).unwrap();
    put(&p.sysfs.join("dsa0"), "op_cap", "0x0,0x0,0x1,0x10000001f");
    fs::remove_file(p.sysfs.join("dsa1/op_cap")).unwrap();
    // Without op_config (kernels before 6.1) the device's set is the WQ's.
    fs::remove_file(p.sysfs.join("wq0.0/op_config")).unwrap();
    fs::remove_file(p.sysfs.join("wq1.0/op_config")).unwrap();
    let d = scan(&p);
    let baseline = OpCap::of(&[0, 1, 2, 3, 4, 0x20]);
    assert_eq!(OpCap::dsa1_baseline(), baseline);
    for dv in &d.devices {
        assert_eq!(dv.op_cap, baseline, "{}", dv.name);
    }
    let note = |i: usize| d.devices[i].op_cap_note.clone().unwrap();
    assert!(note(0).contains("no format") && note(0).contains("DSA 1.0"));
    assert!(note(1).contains("dsa1: op_cap is missing"), "{}", note(1));
    let (ok, rejected) = d.select();
    assert!(rejected.is_empty(), "{rejected:?}");
    for c in &ok {
        assert_eq!(c.ops, baseline);
        assert!(c.batch_supported());
    }
}

#[test]
fn parses_every_attribute_of_a_real_looking_tree() {
    let t = TempDir::new("sysfs-real");
    let p = paths(&t);
    let dev = p.sysfs.join("dsa0");
    for (k, v) in [
        ("state", "enabled"),
        ("version", "0x100"),
        ("numa_node", "1"),
        ("max_transfer_size", "2147483648"),
        ("max_batch_size", "1024"),
        ("gen_cap", "0x40915f0107"),
        (
            "op_cap",
            "00000000,00000000,00000000,00000000,00000000,00000001,003f03ff,00000000",
        ),
        ("pasid_enabled", "1"),
    ] {
        put(&dev, k, v);
    }
    let wq = p.sysfs.join("wq0.1");
    for (k, v) in [
        ("state", "enabled"),
        ("mode", "dedicated"),
        ("type", "user"),
        ("size", "128"),
        ("threshold", "0"),
        ("max_transfer_size", "2097152"),
        ("max_batch_size", "32"),
        ("block_on_fault", "0"),
        ("priority", "10"),
    ] {
        put(&wq, k, v);
    }
    put(&p.dev, "wq0.1", "");
    let d = scan(&p);
    assert_eq!(d.devices.len(), 1);
    let dv = &d.devices[0];
    assert_eq!(
        (dv.id, dv.state.as_str(), dv.version, dv.numa_node),
        (0, "enabled", 0x100, 1)
    );
    assert_eq!(
        (dv.max_transfer_size, dv.max_batch_size, dv.gen_cap),
        (1 << 31, 1024, 0x40_915f_0107)
    );
    assert!(dv.pasid_enabled);
    // op_cap here lists opcodes 0x20..: word 1 holds bits 32..63.
    assert!(dv.op_cap.has(0x20) && dv.op_cap.has(0x29) && !dv.op_cap.has(0x03));
    let w = &d.wqs[0];
    assert_eq!(
        (w.dev_id, w.wq_id, w.mode, w.wq_type.as_str()),
        (0, 1, Some(WqMode::Dedicated), "user")
    );
    assert_eq!(
        (w.size, w.threshold, w.max_transfer_size, w.max_batch_size),
        (128, 0, 2 << 20, 32)
    );
    assert!(!w.block_on_fault);
    assert_eq!(w.op_config, None);
    let (ok, rejected) = d.select();
    assert!(rejected.is_empty(), "{rejected:?}");
    let c = &ok[0];
    assert_eq!(c.name, "wq0.1");
    assert_eq!(c.dev_node, p.dev.join("wq0.1"));
    assert_eq!(
        (c.size, c.max_transfer_size, c.max_batch_size),
        (128, 2 << 20, 32)
    );
    assert!(c.overlap_supported() && c.readback_supported());
    assert!(!c.batch_supported(), "op_cap lacks BATCH");
}

#[test]
fn selection_rule_and_reasons() {
    let t = TempDir::new("sysfs-select");
    let p = paths(&t);
    let cfg = EmuConfig::default();
    // dsa0 with wq0.0 (usable); then break copies of it in one way each.
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 0).unwrap();
    let mut shared = cfg.clone();
    shared.mode = WqMode::Shared;
    shared.threshold = 20;
    sysfs::write_tree(&p.sysfs, &p.dev, &shared, 0, 1).unwrap();
    for (wq, attr, value) in [
        (2, "state", "disabled"),
        (3, "type", "kernel"),
        (4, "mode", "weird"),
        (5, "size", "0"),
    ] {
        sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, wq).unwrap();
        put(&p.sysfs.join(format!("wq0.{wq}")), attr, value);
    }
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 6).unwrap();
    fs::remove_file(p.dev.join("wq0.6")).unwrap();
    // A disabled device disqualifies its queues.
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 1, 0).unwrap();
    put(&p.sysfs.join("dsa1"), "state", "disabled");
    // A queue whose device is missing.
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 2, 0).unwrap();
    fs::remove_dir_all(p.sysfs.join("dsa2")).unwrap();
    // Kernel "type" with a suffix still parses.
    put(&p.sysfs.join("wq0.1"), "type", "user:app");
    // Unrelated entries are ignored.
    put(&p.sysfs.join("engine0.0"), "group_id", "0");
    put(&p.sysfs.join("group0.0"), "traffic_class_a", "1");

    let d = scan(&p);
    assert_eq!(d.devices.len(), 2);
    let (ok, rejected) = d.select();
    let names: Vec<&str> = ok.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["wq0.0", "wq0.1"]);
    assert_eq!(ok[1].mode, WqMode::Shared);
    assert_eq!(ok[1].threshold, 20);
    let why = |n: &str| {
        rejected
            .iter()
            .find(|r| r.wq == n)
            .map(|r| r.why.clone())
            .unwrap()
    };
    assert!(why("wq0.2").contains("disabled"));
    assert!(why("wq0.3").contains("kernel"));
    assert!(why("wq0.4").contains("mode"));
    assert!(why("wq0.5").contains("size"));
    assert!(why("wq0.6").contains("does not exist"));
    assert!(why("wq1.0").contains("dsa1"));
    assert!(why("wq2.0").contains("no device"));
    assert_eq!(rejected.len(), 7);
    assert_eq!(rejected[0].to_string(), format!("wq0.2: {}", why("wq0.2")));
}

#[test]
fn iaa_queues_are_skipped_with_their_reason() {
    // IAA devices share the bus and the wq<m>.<n> names (the driver numbers
    // DSA and IAA devices from one counter).
    let t = TempDir::new("sysfs-iaa");
    let p = paths(&t);
    sysfs::write_tree(&p.sysfs, &p.dev, &EmuConfig::default(), 0, 0).unwrap();
    sysfs::write_tree(&p.sysfs, &p.dev, &EmuConfig::default(), 1, 0).unwrap();
    fs::rename(p.sysfs.join("dsa1"), p.sysfs.join("iax1")).unwrap();
    let (ok, rejected) = scan(&p).select();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].name, "wq0.0");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].wq, "wq1.0");
    let why = &rejected[0].why;
    assert!(why.contains("iax1") && why.contains("IAA"), "{why}");
    assert!(!why.contains("no device"), "{why}");
}

#[test]
fn prs_disable_overrides_block_on_fault_and_ats_is_reported() {
    let t = TempDir::new("sysfs-ats");
    let p = paths(&t);
    let cfg = EmuConfig {
        block_on_fault: true,
        ..Default::default()
    };
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 0).unwrap();
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 1).unwrap();
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 2).unwrap();
    put(&p.sysfs.join("wq0.1"), "prs_disable", "1");
    put(&p.sysfs.join("wq0.2"), "ats_disable", "1");
    // Kernels before 6.4 have no prs_disable at all.
    fs::remove_file(p.sysfs.join("wq0.0/prs_disable")).unwrap();
    let (ok, rejected) = scan(&p).select();
    assert!(rejected.is_empty(), "{rejected:?}");
    let [a, b, c] = &ok[..] else { panic!("{ok:?}") };
    assert!(a.block_on_fault && !a.prs_disabled && !a.ats_disabled);
    assert!(a.fault_note().is_none());
    assert!(!b.block_on_fault, "prs_disable overrides block_on_fault");
    assert!(b.prs_disabled && !b.ats_disabled);
    assert!(b.fault_note().is_none(), "faults still resume without PRS");
    assert!(c.ats_disabled && c.block_on_fault);
    let note = c.fault_note().unwrap();
    assert!(
        note.contains("wq0.2") && note.contains("ats_disable"),
        "{note}"
    );
}

#[test]
fn numa_node_minus_one_means_any() {
    let t = TempDir::new("sysfs-numa");
    let p = paths(&t);
    for dev in 0..3 {
        sysfs::write_tree(&p.sysfs, &p.dev, &EmuConfig::default(), dev, 0).unwrap();
    }
    put(&p.sysfs.join("dsa1"), "numa_node", "-1");
    fs::remove_file(p.sysfs.join("dsa2/numa_node")).unwrap();
    let (ok, _) = scan(&p).select();
    let nodes: Vec<i32> = ok.iter().map(|c| c.numa_node).collect();
    assert_eq!(nodes, [0, -1, -1]);
}

#[test]
fn emulator_tree_round_trips_through_discovery() {
    for kernel in Kernel::ALL {
        for version in [0x100, 0x200] {
            let t = TempDir::new("sysfs-emu");
            let p = paths(&t);
            let cfg = EmuConfig {
                wq_size: 16,
                max_transfer_size: 1 << 16,
                max_batch_size: 8,
                block_on_fault: true,
                kernel,
                version,
                ..Default::default()
            };
            sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 3, 2).unwrap();
            let (ok, rejected) = scan(&p).select();
            assert!(rejected.is_empty(), "{rejected:?}");
            let mut got = ok[0].clone();
            let mut want = cfg.wq_config();
            assert_eq!(got.name, "wq3.2");
            assert_eq!(got.dev_node, p.dev.join("wq3.2"));
            got.name = want.name.clone();
            got.dev_node = PathBuf::new();
            want.dev_node = PathBuf::new();
            // What the kernel hides is all that differs from the device.
            if kernel.hides_batch(version) {
                want.ops = want.ops.without(opcode::BATCH);
            }
            assert_eq!(got, want, "kernel {kernel}, version {version:#x}");
        }
    }
}

#[test]
fn each_generation_prints_its_own_text_and_parses_to_the_full_set() {
    let t = TempDir::new("sysfs-gen");
    for kernel in Kernel::ALL {
        let p = Paths {
            sysfs: t.path().join(format!("sys-{kernel}")),
            dev: t.path().join(format!("dev-{kernel}")),
        };
        let cfg = EmuConfig {
            kernel,
            version: 0x200,
            ..Default::default()
        };
        sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 0).unwrap();
        let text = fs::read_to_string(p.sysfs.join("dsa0/op_cap")).unwrap();
        let text = text.trim_end();
        if kernel == Kernel::K5_15 {
            assert_eq!(text, "0x10000001f 0x0 0x0 0x0");
        } else {
            // BATCH (bit 1) hidden on 6.9 only, for a version 2 device.
            let low = if kernel == Kernel::K6_9 { "1d" } else { "1f" };
            assert_eq!(text.split(',').count(), 8, "{text}");
            assert!(text.ends_with(&format!(",00000001,000000{low}")), "{text}");
        }
        let has = |a: &str| p.sysfs.join("wq0.0").join(a).exists();
        assert_eq!(has("op_config"), kernel >= Kernel::K6_1);
        assert_eq!(has("prs_disable"), kernel >= Kernel::K6_9);
        assert!(has("ats_disable"));
        // Parsed, not assumed: no baseline note.
        let d = scan(&p);
        assert_eq!(d.devices[0].op_cap_note, None, "kernel {kernel}");
        // A version 2 device shows BATCH everywhere but on 6.9.
        let (ok, rejected) = d.select();
        assert!(rejected.is_empty(), "{rejected:?}");
        let want = if kernel == Kernel::K6_9 {
            cfg.ops.without(opcode::BATCH)
        } else {
            cfg.ops
        };
        assert_eq!(ok[0].ops, want, "kernel {kernel}");
        assert!(ok[0].ops.has(opcode::MEMMOVE) && ok[0].ops.has(opcode::CFLUSH));
    }
}

#[test]
fn priority_orders_queues_and_limits_combine() {
    let t = TempDir::new("sysfs-prio");
    let p = paths(&t);
    let cfg = EmuConfig {
        max_transfer_size: 1 << 40,
        max_batch_size: 4096,
        ..Default::default()
    };
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 0).unwrap();
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 0, 1).unwrap();
    put(&p.sysfs.join("wq0.1"), "priority", "15");
    // WQ op_config restricts the device op_cap.
    put(&p.sysfs.join("wq0.0"), "op_config", "0x8");
    let (ok, _) = scan(&p).select();
    assert_eq!(ok[0].name, "wq0.1");
    // WQ limits above the device's are capped by the device (2 GiB, 1024).
    assert_eq!(
        (ok[0].max_transfer_size, ok[0].max_batch_size),
        (1 << 31, 1024)
    );
    assert_eq!(ok[1].ops, OpCap::of(&[3]));
}

#[test]
fn missing_bus_directory_is_empty() {
    let p = Paths {
        sysfs: PathBuf::from("/nonexistent/bus"),
        dev: PathBuf::from("/nonexistent/dev"),
    };
    let d = scan(&p);
    assert!(d.devices.is_empty() && d.wqs.is_empty());
    assert!(d.select().0.is_empty());
}

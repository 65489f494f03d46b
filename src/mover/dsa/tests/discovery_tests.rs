//! Discovery on fake sysfs trees.

use super::*;
use crate::mover::dsa::emu::{sysfs, EmuConfig};
use crate::mover::dsa::testutil::TempDir;

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

#[test]
fn op_cap_formats() {
    // Eight 32-bit words, most significant first (current kernels).
    let c = OpCap::parse("00000000,00000000,00000000,00000000,00000000,00000001,00000000,0003037f")
        .unwrap();
    for op in [0u8, 1, 2, 3, 4, 5, 6, 8, 9, 0x10, 0x11] {
        assert!(c.has(op), "op {op:#x}");
    }
    assert!(!c.has(7) && !c.has(0x12));
    assert!(c.has(0x40));
    // Four 64-bit words with 0x prefixes (older kernels).
    let c = OpCap::parse("0x0,0x0,0x1,0x10000001f").unwrap();
    assert!(c.has(0) && c.has(4) && !c.has(5) && c.has(32) && c.has(64));
    // A single word.
    assert_eq!(OpCap::parse("0x1b").unwrap(), OpCap::of(&[0, 1, 3, 4]));
    assert_eq!(OpCap::parse("nonsense"), None);
    assert_eq!(OpCap::parse("1,2,3,4,5"), None);
    assert_eq!(OpCap::parse("1ffffffff,0,0,0,0,0,0,0"), None);
    assert_eq!(OpCap::of(&[1, 3]).without(1), OpCap::of(&[3]));
    assert_eq!(OpCap::ALL.and(OpCap::of(&[0x20])), OpCap::of(&[0x20]));
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
    put(&p.sysfs.join("iax1"), "state", "enabled");

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
fn emulator_tree_round_trips_through_discovery() {
    let t = TempDir::new("sysfs-emu");
    let p = paths(&t);
    let mut cfg = EmuConfig {
        wq_size: 16,
        max_transfer_size: 1 << 16,
        max_batch_size: 8,
        ..Default::default()
    };
    cfg.block_on_fault = true;
    sysfs::write_tree(&p.sysfs, &p.dev, &cfg, 3, 2).unwrap();
    let (ok, rejected) = scan(&p).select();
    assert!(rejected.is_empty());
    let mut got = ok[0].clone();
    let mut want = cfg.wq_config();
    assert_eq!(got.name, "wq3.2");
    got.name = want.name.clone();
    got.dev_node = PathBuf::new();
    want.dev_node = PathBuf::new();
    assert_eq!(got, want);
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

//! Pin every constant and layout we use to the kernel's `linux/idxd.h`:
//! compile a C program against the installed header, print each value, and
//! compare with ours. Skips (loudly) only when the header is not installed
//! (`apt-get install linux-libc-dev`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::mover::dsa::hw::{flag, opcode, status, CompletionRecord, Descriptor};
use crate::mover::dsa::testutil::TempDir;

const HEADER: &str = "/usr/include/linux/idxd.h";

const PROGRAM: &str = r#"
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/idxd.h>
#define P(n) printf("%s=%lld\n", #n, (long long)(n))
#define OFF(t, f) printf("off_%s_%s=%zu\n", #t, #f, offsetof(struct t, f))
int main(void) {
    P(IDXD_OP_FLAG_FENCE); P(IDXD_OP_FLAG_BOF); P(IDXD_OP_FLAG_CRAV); P(IDXD_OP_FLAG_RCR);
    P(IDXD_OP_FLAG_RCI); P(IDXD_OP_FLAG_CRSTS); P(IDXD_OP_FLAG_CR); P(IDXD_OP_FLAG_CC);
    P(IDXD_OP_FLAG_ADDR1_TCS); P(IDXD_OP_FLAG_ADDR2_TCS); P(IDXD_OP_FLAG_ADDR3_TCS);
    P(IDXD_OP_FLAG_CR_TCS); P(IDXD_OP_FLAG_STORD); P(IDXD_OP_FLAG_DRDBK); P(IDXD_OP_FLAG_DSTS);
    P(DSA_OPCODE_NOOP); P(DSA_OPCODE_BATCH); P(DSA_OPCODE_DRAIN); P(DSA_OPCODE_MEMMOVE);
    P(DSA_OPCODE_MEMFILL); P(DSA_OPCODE_COMPARE); P(DSA_OPCODE_COMPVAL); P(DSA_OPCODE_CR_DELTA);
    P(DSA_OPCODE_AP_DELTA); P(DSA_OPCODE_DUALCAST); P(DSA_OPCODE_CRCGEN); P(DSA_OPCODE_COPY_CRC);
    P(DSA_OPCODE_DIF_CHECK); P(DSA_OPCODE_DIF_INS); P(DSA_OPCODE_DIF_STRP); P(DSA_OPCODE_DIF_UPDT);
    P(DSA_OPCODE_CFLUSH);
    P(DSA_COMP_NONE); P(DSA_COMP_SUCCESS); P(DSA_COMP_SUCCESS_PRED); P(DSA_COMP_PAGE_FAULT_NOBOF);
    P(DSA_COMP_PAGE_FAULT_IR); P(DSA_COMP_BATCH_FAIL); P(DSA_COMP_BATCH_PAGE_FAULT);
    P(DSA_COMP_DR_OFFSET_NOINC); P(DSA_COMP_DR_OFFSET_ERANGE); P(DSA_COMP_DIF_ERR);
    P(DSA_COMP_BAD_OPCODE); P(DSA_COMP_INVALID_FLAGS); P(DSA_COMP_NOZERO_RESERVE);
    P(DSA_COMP_XFER_ERANGE); P(DSA_COMP_DESC_CNT_ERANGE); P(DSA_COMP_DR_ERANGE);
    P(DSA_COMP_OVERLAP_BUFFERS); P(DSA_COMP_DCAST_ERR); P(DSA_COMP_DESCLIST_ALIGN);
    P(DSA_COMP_INT_HANDLE_INVAL); P(DSA_COMP_CRA_XLAT); P(DSA_COMP_CRA_ALIGN);
    P(DSA_COMP_ADDR_ALIGN); P(DSA_COMP_PRIV_BAD); P(DSA_COMP_TRAFFIC_CLASS_CONF);
    P(DSA_COMP_PFAULT_RDBA); P(DSA_COMP_HW_ERR1); P(DSA_COMP_HW_ERR_DRB);
    P(DSA_COMP_TRANSLATION_FAIL);
    P(DSA_COMP_STATUS_MASK); P(DSA_COMP_STATUS_WRITE);
    P(sizeof(struct dsa_hw_desc)); P(sizeof(struct dsa_completion_record));
    OFF(dsa_hw_desc, completion_addr); OFF(dsa_hw_desc, src_addr); OFF(dsa_hw_desc, pattern);
    OFF(dsa_hw_desc, desc_list_addr); OFF(dsa_hw_desc, dst_addr); OFF(dsa_hw_desc, xfer_size);
    OFF(dsa_hw_desc, desc_count); OFF(dsa_hw_desc, int_handle); OFF(dsa_hw_desc, rsvd1);
    OFF(dsa_hw_desc, op_specific);
    OFF(dsa_completion_record, status); OFF(dsa_completion_record, result);
    OFF(dsa_completion_record, bytes_completed); OFF(dsa_completion_record, fault_addr);
    OFF(dsa_completion_record, op_specific);
    /* Bit fields cannot be offsetof'd: encode a descriptor and dump it. */
    struct dsa_hw_desc d;
    memset(&d, 0, sizeof d);
    d.pasid = 0x12345; d.priv = 1; d.flags = 0x10c; d.opcode = DSA_OPCODE_MEMMOVE;
    d.completion_addr = 0x1122334455667788ULL; d.src_addr = 0x1000; d.dst_addr = 0x2000;
    d.xfer_size = 4096; d.int_handle = 0x3344;
    const unsigned char *b = (const unsigned char *)&d;
    printf("desc_bytes=");
    for (size_t i = 0; i < sizeof d; i++) printf(" %u", b[i]);
    printf("\n");
    struct dsa_completion_record c;
    memset(&c, 0, sizeof c);
    c.status = DSA_COMP_PAGE_FAULT_NOBOF | DSA_COMP_STATUS_WRITE; c.result = 1;
    c.bytes_completed = 0x01020304; c.fault_addr = 0xa0b0c0d0e0f00010ULL; c.invalid_flags = 0x4321;
    b = (const unsigned char *)&c;
    printf("cr_bytes=");
    for (size_t i = 0; i < sizeof c; i++) printf(" %u", b[i]);
    printf("\n");
    return 0;
}
"#;

fn kernel_values() -> Option<HashMap<String, String>> {
    if !Path::new(HEADER).exists() {
        eprintln!("SKIP: {HEADER} not installed (apt-get install linux-libc-dev)");
        return None;
    }
    let dir = TempDir::new("idxd-h");
    let src = dir.path().join("idxd.c");
    let exe = dir.path().join("idxd");
    std::fs::write(&src, PROGRAM).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .arg("-std=gnu11")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output();
    let out = out.unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(
        out.status.success(),
        "compiling against {HEADER} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn constants_and_layouts_match_linux_idxd_h() {
    let Some(k) = kernel_values() else { return };
    let num = |name: &str| -> i64 {
        k.get(name)
            .unwrap_or_else(|| panic!("{name} missing from the C output"))
            .parse()
            .unwrap()
    };
    let flags: &[(&str, u32)] = &[
        ("IDXD_OP_FLAG_FENCE", flag::FENCE),
        ("IDXD_OP_FLAG_BOF", flag::BOF),
        ("IDXD_OP_FLAG_CRAV", flag::CRAV),
        ("IDXD_OP_FLAG_RCR", flag::RCR),
        ("IDXD_OP_FLAG_RCI", flag::RCI),
        ("IDXD_OP_FLAG_CRSTS", flag::CRSTS),
        ("IDXD_OP_FLAG_CR", flag::CHECK_RESULT),
        ("IDXD_OP_FLAG_CC", flag::CC),
        ("IDXD_OP_FLAG_ADDR1_TCS", flag::ADDR1_TCS),
        ("IDXD_OP_FLAG_ADDR2_TCS", flag::ADDR2_TCS),
        ("IDXD_OP_FLAG_ADDR3_TCS", flag::ADDR3_TCS),
        ("IDXD_OP_FLAG_CR_TCS", flag::CR_TCS),
        ("IDXD_OP_FLAG_STORD", flag::STORD),
        ("IDXD_OP_FLAG_DRDBK", flag::DRDBK),
        ("IDXD_OP_FLAG_DSTS", flag::DSTS),
    ];
    for &(n, v) in flags {
        assert_eq!(num(n), i64::from(v), "{n}");
    }
    let ops: &[(&str, u8)] = &[
        ("DSA_OPCODE_NOOP", opcode::NOOP),
        ("DSA_OPCODE_BATCH", opcode::BATCH),
        ("DSA_OPCODE_DRAIN", opcode::DRAIN),
        ("DSA_OPCODE_MEMMOVE", opcode::MEMMOVE),
        ("DSA_OPCODE_MEMFILL", opcode::MEMFILL),
        ("DSA_OPCODE_COMPARE", opcode::COMPARE),
        ("DSA_OPCODE_COMPVAL", opcode::COMPVAL),
        ("DSA_OPCODE_CR_DELTA", opcode::CR_DELTA),
        ("DSA_OPCODE_AP_DELTA", opcode::AP_DELTA),
        ("DSA_OPCODE_DUALCAST", opcode::DUALCAST),
        ("DSA_OPCODE_CRCGEN", opcode::CRCGEN),
        ("DSA_OPCODE_COPY_CRC", opcode::COPY_CRC),
        ("DSA_OPCODE_DIF_CHECK", opcode::DIF_CHECK),
        ("DSA_OPCODE_DIF_INS", opcode::DIF_INS),
        ("DSA_OPCODE_DIF_STRP", opcode::DIF_STRP),
        ("DSA_OPCODE_DIF_UPDT", opcode::DIF_UPDT),
        ("DSA_OPCODE_CFLUSH", opcode::CFLUSH),
    ];
    for &(n, v) in ops {
        assert_eq!(num(n), i64::from(v), "{n}");
    }
    let st: &[(&str, u8)] = &[
        ("DSA_COMP_NONE", status::NONE),
        ("DSA_COMP_SUCCESS", status::SUCCESS),
        ("DSA_COMP_SUCCESS_PRED", status::SUCCESS_PRED),
        ("DSA_COMP_PAGE_FAULT_NOBOF", status::PAGE_FAULT_NOBOF),
        ("DSA_COMP_PAGE_FAULT_IR", status::PAGE_FAULT_IR),
        ("DSA_COMP_BATCH_FAIL", status::BATCH_FAIL),
        ("DSA_COMP_BATCH_PAGE_FAULT", status::BATCH_PAGE_FAULT),
        ("DSA_COMP_DR_OFFSET_NOINC", status::DR_OFFSET_NOINC),
        ("DSA_COMP_DR_OFFSET_ERANGE", status::DR_OFFSET_ERANGE),
        ("DSA_COMP_DIF_ERR", status::DIF_ERR),
        ("DSA_COMP_BAD_OPCODE", status::BAD_OPCODE),
        ("DSA_COMP_INVALID_FLAGS", status::INVALID_FLAGS),
        ("DSA_COMP_NOZERO_RESERVE", status::NOZERO_RESERVE),
        ("DSA_COMP_XFER_ERANGE", status::XFER_ERANGE),
        ("DSA_COMP_DESC_CNT_ERANGE", status::DESC_CNT_ERANGE),
        ("DSA_COMP_DR_ERANGE", status::DR_ERANGE),
        ("DSA_COMP_OVERLAP_BUFFERS", status::OVERLAP_BUFFERS),
        ("DSA_COMP_DCAST_ERR", status::DCAST_ERR),
        ("DSA_COMP_DESCLIST_ALIGN", status::DESCLIST_ALIGN),
        ("DSA_COMP_INT_HANDLE_INVAL", status::INT_HANDLE_INVAL),
        ("DSA_COMP_CRA_XLAT", status::CRA_XLAT),
        ("DSA_COMP_CRA_ALIGN", status::CRA_ALIGN),
        ("DSA_COMP_ADDR_ALIGN", status::ADDR_ALIGN),
        ("DSA_COMP_PRIV_BAD", status::PRIV_BAD),
        ("DSA_COMP_TRAFFIC_CLASS_CONF", status::TRAFFIC_CLASS_CONF),
        ("DSA_COMP_PFAULT_RDBA", status::PFAULT_RDBA),
        ("DSA_COMP_HW_ERR1", status::HW_ERR1),
        ("DSA_COMP_HW_ERR_DRB", status::HW_ERR_DRB),
        ("DSA_COMP_TRANSLATION_FAIL", status::TRANSLATION_FAIL),
        ("DSA_COMP_STATUS_MASK", status::MASK),
        ("DSA_COMP_STATUS_WRITE", status::WRITE_FAULT),
    ];
    for &(n, v) in st {
        assert_eq!(num(n), i64::from(v), "{n}");
    }
    assert_eq!(num("sizeof(struct dsa_hw_desc)"), 64);
    assert_eq!(num("sizeof(struct dsa_completion_record)"), 32);
    let d = |f: &str| num(&format!("off_dsa_hw_desc_{f}")) as usize;
    use core::mem::offset_of;
    assert_eq!(
        d("completion_addr"),
        offset_of!(Descriptor, completion_addr)
    );
    for f in ["src_addr", "pattern", "desc_list_addr"] {
        assert_eq!(d(f), offset_of!(Descriptor, src), "{f}");
    }
    assert_eq!(d("dst_addr"), offset_of!(Descriptor, dst));
    assert_eq!(d("xfer_size"), offset_of!(Descriptor, xfer_size));
    assert_eq!(d("desc_count"), offset_of!(Descriptor, xfer_size));
    assert_eq!(d("int_handle"), offset_of!(Descriptor, int_handle));
    assert_eq!(d("rsvd1"), offset_of!(Descriptor, rsvd));
    assert_eq!(d("op_specific"), offset_of!(Descriptor, op_specific));
    let c = |f: &str| num(&format!("off_dsa_completion_record_{f}")) as usize;
    assert_eq!(c("status"), offset_of!(CompletionRecord, status));
    assert_eq!(c("result"), offset_of!(CompletionRecord, result));
    assert_eq!(
        c("bytes_completed"),
        offset_of!(CompletionRecord, bytes_completed)
    );
    assert_eq!(c("fault_addr"), offset_of!(CompletionRecord, fault_addr));
    assert_eq!(c("op_specific"), offset_of!(CompletionRecord, op_specific));

    // Byte-for-byte: the same descriptor built by us and by the kernel
    // header's bit fields.
    let bytes = |name: &str| -> Vec<u8> {
        k[name]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect()
    };
    let mut ours = Descriptor::memmove(0x2000, 0x1000, 4096, 0x1122_3344_5566_7788, 0x10c);
    ours.pasid_priv = 0x12345 | (1 << 31);
    ours.int_handle = 0x3344;
    assert_eq!(bytes("desc_bytes").as_slice(), ours.as_bytes());
    assert_eq!(ours.pasid(), 0x12345);
    assert!(ours.privileged());
    let cr = bytes("cr_bytes");
    // SAFETY: reading 32 initialised bytes as a plain-data record.
    let rec: CompletionRecord = unsafe { core::ptr::read_unaligned(cr.as_ptr().cast()) };
    assert_eq!(rec.code(), status::PAGE_FAULT_NOBOF);
    assert!(rec.write_fault());
    assert_eq!(
        (rec.result, rec.bytes_completed, rec.fault_addr),
        (1, 0x0102_0304, 0xa0b0_c0d0_e0f0_0010)
    );
    assert_eq!(rec.invalid_flags(), 0x4321);
}

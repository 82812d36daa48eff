use pxos_pixel::{
    EncodeOptions, Kind, Layout, Limits, PixelReader, encode_to_vec, read_range_sequential,
};

use crate::support::{Rng, TempDir};

#[test]
fn random_reads_match_the_payload_in_every_layout() {
    let dir = TempDir::new("random");
    let mut rng = Rng(5);
    for (index, (kind, layout)) in [
        (Kind::Blob, Layout::Rgb),
        (Kind::Text, Layout::Rgb),
        (Kind::Tensor, Layout::Rgba),
    ]
    .into_iter()
    .enumerate()
    {
        let payload: Vec<u8> = if kind == Kind::Text {
            (0..1_500_000u32)
                .map(|i| b"the quick brown fox "[(i % 20) as usize] ^ ((i / 4096) as u8 & 1))
                .collect()
        } else {
            rng.bytes(1_500_000)
        };
        let options = EncodeOptions {
            kind,
            layout,
            metadata: vec![9; 1000],
            ..EncodeOptions::default()
        };
        let path = dir.join(format!("{index}.png"));
        std::fs::write(&path, encode_to_vec(&payload, &options).unwrap()).unwrap();
        let mut reader = PixelReader::open(&path, &Limits::default()).unwrap();
        assert!(reader.has_index());
        assert_eq!(reader.metadata().unwrap(), vec![9; 1000]);
        for _ in 0..50 {
            let len = rng.below(300_000) as usize;
            let offset = rng.below((payload.len() - len) as u64);
            let got = reader.read_at(offset, len).unwrap();
            assert!(
                got == payload[offset as usize..offset as usize + len],
                "read {offset}+{len}"
            );
        }
        assert_eq!(
            reader.read_at(payload.len() as u64 - 1, 1).unwrap(),
            &payload[payload.len() - 1..]
        );
        assert!(reader.read_at(payload.len() as u64 - 1, 2).is_err());
        assert!(reader.read_at(u64::MAX, 1).is_err());
        let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        assert_eq!(
            read_range_sequential(file, 777_777, 33, &Limits::default()).unwrap(),
            &payload[777_777..777_810]
        );
    }
}

#[test]
fn a_damaged_band_fails_only_reads_of_that_band() {
    let dir = TempDir::new("band");
    let payload = Rng(8).bytes(2_000_000);
    let mut png = encode_to_vec(&payload, &EncodeOptions::kind(Kind::Tensor)).unwrap();
    let middle = png.len() / 2;
    png[middle] ^= 0xff;
    let path = dir.join("damaged.png");
    std::fs::write(&path, &png).unwrap();
    let mut reader = PixelReader::open(&path, &Limits::default()).unwrap();
    assert_eq!(reader.read_at(0, 4096).unwrap(), &payload[..4096]);
    let err = reader.read_at(middle as u64 - 4000, 100).unwrap_err();
    assert!(
        err.to_string().contains("bad CRC") && err.to_string().contains("damaged.png"),
        "{err}"
    );
}

//! Compressed logs, recognised by their first bytes rather than their names
//! (logrotate's `delaycompress` and hand-made copies make names unreliable).

use std::io::{self, BufRead, BufReader, Read};

/// How a stream is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// The compression whose magic number starts `head`.
    pub fn of(head: &[u8]) -> Compression {
        const MAGIC: [(&[u8], Compression); 4] = [
            (&[0x1f, 0x8b], Compression::Gzip),
            (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
            (b"BZh", Compression::Bzip2),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], Compression::Xz),
        ];
        MAGIC
            .iter()
            .find(|(magic, _)| head.starts_with(magic))
            .map_or(Compression::None, |&(_, compression)| compression)
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

/// The longest magic number looked for.
const MAGIC_LEN: usize = 6;

/// `raw`, decompressed if its first bytes say it is compressed. Every
/// member of a multi-member file (`cat a.gz b.gz`, concatenated zstd
/// frames, bzip2 streams) is read.
pub fn decompressed(raw: Box<dyn Read + Send>) -> io::Result<(Compression, Box<dyn Read + Send>)> {
    let mut raw = BufReader::with_capacity(256 * 1024, raw);
    let compression = Compression::of(&peek(&mut raw, MAGIC_LEN)?);
    let reader: Box<dyn Read + Send> = match compression {
        // Straight from the source once the bytes peeked are read: through
        // the buffer, a read smaller than it would copy every byte twice.
        Compression::None => {
            Box::new(io::Cursor::new(raw.buffer().to_vec()).chain(raw.into_inner()))
        }
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw)),
    };
    Ok((compression, reader))
}

/// Up to `n` first bytes of `reader`, left unread.
fn peek(reader: &mut BufReader<Box<dyn Read + Send>>, n: usize) -> io::Result<Vec<u8>> {
    // One fill gives what a pipe has ready; a file gives at least `n` bytes
    // when it has them.
    loop {
        match reader.fill_buf() {
            Ok(buf) => return Ok(buf.iter().take(n).copied().collect()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] = b"line one\nline two\n";

    fn roundtrip(compressed: Vec<u8>) -> (Compression, Vec<u8>) {
        let (compression, mut reader) =
            decompressed(Box::new(io::Cursor::new(compressed))).expect("opens");
        let mut out = Vec::new();
        reader.read_to_end(&mut out).expect("reads");
        (compression, out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn each_compression_is_recognised_and_read() {
        assert_eq!(roundtrip(TEXT.to_vec()), (Compression::None, TEXT.to_vec()));
        assert_eq!(roundtrip(gzip(TEXT)), (Compression::Gzip, TEXT.to_vec()));
        let zstd = zstd::encode_all(TEXT, 3).unwrap();
        assert_eq!(roundtrip(zstd), (Compression::Zstd, TEXT.to_vec()));
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(TEXT).unwrap();
        assert_eq!(
            roundtrip(bz.finish().unwrap()),
            (Compression::Bzip2, TEXT.to_vec())
        );
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(TEXT).unwrap();
        assert_eq!(
            roundtrip(xz.finish().unwrap()),
            (Compression::Xz, TEXT.to_vec())
        );
    }

    #[test]
    fn every_member_of_a_concatenated_gzip_is_read() {
        let mut two = gzip(b"first\n");
        two.extend(gzip(b"second\n"));
        assert_eq!(roundtrip(two).1, b"first\nsecond\n");
    }

    #[test]
    fn a_truncated_gzip_is_an_error_after_the_data_it_had() {
        let big: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let whole = gzip(&big);
        let cut = whole[..whole.len() / 2].to_vec();
        let (_, mut reader) = decompressed(Box::new(io::Cursor::new(cut))).unwrap();
        let mut out = Vec::new();
        let error = reader.read_to_end(&mut out).expect_err("truncated");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(!out.is_empty() && big.starts_with(&out));
    }

    #[test]
    fn empty_and_tiny_inputs_are_plain() {
        assert_eq!(roundtrip(Vec::new()), (Compression::None, Vec::new()));
        assert_eq!(roundtrip(vec![0x1f]), (Compression::None, vec![0x1f]));
    }
}

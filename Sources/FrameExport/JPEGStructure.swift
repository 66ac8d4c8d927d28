/// Walks the markers of a JPEG file to find its size and to check that it is complete.
///
/// Why this exists: libjpeg treats a file cut short as a mere *warning*. It fills the missing
/// part with grey and gd returns the picture as if nothing happened. Walking the marker structure
/// first lets us report "truncated" instead of silently handing a half-grey photo to the model,
/// and lets us refuse absurd sizes before gd allocates memory for them.
///
/// A JPEG is a sequence of markers, each `0xFF` followed by a code byte:
/// - `FFD8` start of image and `FFD9` end of image (EOI) stand alone;
/// - `FFD0`-`FFD7` (restart markers) stand alone too;
/// - every other marker is followed by a 2-byte big-endian length that counts itself and the
///   segment's data; the start-of-frame segments (`FFC0`-`FFCF` except C4, C8, CC) hold
///   precision (1 byte), height (2) and width (2);
/// - after a start-of-scan segment (`FFDA`) comes the compressed data, where a literal `0xFF` is
///   written as `FF 00`, so the next real marker is the first `FF xx` with `xx` neither 0 nor a
///   restart code.
package enum JPEGStructure {
    /// What was found, or why the file cannot be a complete JPEG.
    package enum Inspection: Equatable {
        case complete(width: Int, height: Int)
        case broken(String)
    }

    package static func inspect(_ bytes: [UInt8]) -> Inspection {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else {
            return .broken("missing the start-of-image marker")
        }
        var size: (width: Int, height: Int)?
        var i = 2
        while true {
            guard i + 1 < bytes.count else { return .broken("the file ends before the end-of-image marker") }
            guard bytes[i] == 0xFF else { return .broken("expected a marker at byte \(i)") }
            let code = bytes[i + 1]
            if code == 0xFF { i += 1; continue }                          // fill byte before a marker
            if code == 0xD9 {                                             // end of image
                guard let size else { return .broken("no frame header before the end-of-image marker") }
                return .complete(width: size.width, height: size.height)
            }
            if (0xD0...0xD7).contains(code) || code == 0x01 { i += 2; continue }
            guard i + 3 < bytes.count else { return .broken("the file ends inside a segment header") }
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2 else { return .broken("invalid segment length at byte \(i)") }
            let segmentEnd = i + 2 + length
            guard segmentEnd <= bytes.count else { return .broken("the file ends inside a segment") }
            if (0xC0...0xCF).contains(code) && ![0xC4, 0xC8, 0xCC].contains(code) && length >= 7 {
                size = (width: Int(bytes[i + 7]) << 8 | Int(bytes[i + 8]),
                        height: Int(bytes[i + 5]) << 8 | Int(bytes[i + 6]))
            }
            i = segmentEnd
            if code == 0xDA {
                // Skip the entropy-coded scan data up to the next real marker.
                while i + 1 < bytes.count
                        && !(bytes[i] == 0xFF && bytes[i + 1] != 0x00 && !(0xD0...0xD7).contains(bytes[i + 1])) {
                    i += 1
                }
                guard i + 1 < bytes.count else {
                    return .broken("the image data ends without an end-of-image marker")
                }
            }
        }
    }
}

/// CLIP's reversible map between the 256 byte values and 256 printable characters
/// (GPT-2's `bytes_to_unicode`, which CLIP copied).
///
/// The tokenizer works on the UTF-8 bytes of the text, so that any text at all, emoji and CJK
/// included, can be spelled with a finite alphabet. But the merges file is text, one merge
/// `"a b"` per line, and must not contain spaces, newlines or control characters. So every byte
/// gets a visible stand-in character:
///
///     bytes 33...126 ("!" to "~"), 161...172 ("¡" to "¬"), 174...255 ("®" to "ÿ")  → themselves
///     the other 68 bytes (0...32, 127...160, 173), in byte order                    → U+0100, U+0101, ...
///
/// so the space byte 32 becomes "Ġ" (U+0120) and the newline 10 becomes "Ċ" (U+010A).
public enum ByteEncoder {
    /// The stand-in character of every byte: `characters[Int(byte)]`.
    public static let characters: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(byte) {
                table[byte] = Character(Unicode.Scalar(UInt32(byte))!)
            } else {
                table[byte] = Character(Unicode.Scalar(next)!)
                next += 1
            }
        }
        return table
    }()

    /// The inverse map: stand-in character → byte.
    public static let bytes: [Character: UInt8] = {
        var inverse: [Character: UInt8] = [:]
        for (byte, character) in characters.enumerated() { inverse[character] = UInt8(byte) }
        return inverse
    }()

    /// The 256 stand-ins in the order CLIP lists them in its vocabulary (ids 0...255, and again
    /// with "</w>" as ids 256...511): the printable bytes first, in byte order, then the others.
    /// This is the order of Python's `bytes_to_unicode().values()`, not byte order.
    public static let vocabularyOrder: [Character] = {
        let printable = (0..<256).filter(isPrintable)
        let others = (0..<256).filter { !isPrintable($0) }
        return (printable + others).map { characters[$0] }
    }()

    /// `text`'s UTF-8 bytes, each replaced by its stand-in character: "café" → "cafÃ©".
    public static func encode(_ text: String) -> String {
        String(text.utf8.map { characters[Int($0)] })
    }

    /// The bytes behind a string of stand-in characters; nil if a character is not a stand-in.
    public static func decode(_ symbols: String) -> [UInt8]? {
        var out: [UInt8] = []
        for character in symbols {
            guard let byte = bytes[character] else { return nil }
            out.append(byte)
        }
        return out
    }

    /// Bytes that stand for themselves: visible Latin-1 characters except the soft hyphen (173).
    private static func isPrintable(_ byte: Int) -> Bool {
        (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
    }
}

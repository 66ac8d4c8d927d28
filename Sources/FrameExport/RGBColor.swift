/// One 8-bit sRGB colour: red, green and blue from 0 to 255.
///
/// ```swift
/// let orange = RGBColor(hex: 0xff7f0e)
/// let halfway = orange.mixed(with: .white, amount: 0.5)
/// ```
public struct RGBColor: Hashable, Sendable, CustomStringConvertible {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// A colour written the way web pages write it: `0xRRGGBB`.
    public init(hex: UInt32) {
        self.init(UInt8((hex >> 16) & 0xff), UInt8((hex >> 8) & 0xff), UInt8(hex & 0xff))
    }

    /// Linear interpolation towards `other`: `amount` 0 gives `self`, 1 gives `other`.
    ///
    /// The mix happens on the stored sRGB values, as browsers and image editors do when they
    /// blend with opacity. `amount` is clamped to `0...1`.
    public func mixed(with other: RGBColor, amount: Float) -> RGBColor {
        let t = min(max(amount, 0), 1)
        func mix(_ a: UInt8, _ b: UInt8) -> UInt8 {
            UInt8((Float(a) + (Float(b) - Float(a)) * t).rounded())
        }
        return RGBColor(mix(red, other.red), mix(green, other.green), mix(blue, other.blue))
    }

    /// `#rrggbb`, handy in test failures.
    public var description: String {
        "#" + [red, green, blue].map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    public static let black = RGBColor(0, 0, 0)
    public static let white = RGBColor(255, 255, 255)
}

/// How the lessons write numbers in their narration and tables.
public enum Format {
    /// A whole number with thousands separators: 786432 → "786,432".
    public static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = n < 0 ? "-" : ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return out
    }

    /// A tensor shape as PyTorch prints it in a tuple: [1, 4, 64, 64] → "(1, 4, 64, 64)".
    public static func shape(_ shape: [Int]) -> String {
        "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    /// Bytes in powers of 1000, as disk and memory makers print them: "1.5 GB", "2.2 TB".
    ///
    /// Three significant digits at most: two decimals below 10, one below 100, none above.
    public static func bytes(_ bytes: Double) -> String {
        let units = ["bytes", "kB", "MB", "GB", "TB", "PB"]
        var value = bytes, unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        guard unit > 0 else { return "\(Int(value)) bytes" }
        return String(format: value < 10 ? "%.2f" : value < 100 ? "%.1f" : "%.0f", value) + " " + units[unit]
    }

    /// Floating-point operations given in GFLOP (10⁹), written in the largest fitting unit:
    /// "1606.5 GFLOP" below 1000, then "2.51 TFLOP", "1.2 PFLOP", "3.4 EFLOP" (10¹⁸) and
    /// "8.5 ZFLOP" (10²¹).
    public static func flops(gflop: Double) -> String {
        if gflop >= 1e12 { return String(format: "%.1f ZFLOP", gflop / 1e12) }
        if gflop >= 1e9 { return String(format: "%.1f EFLOP", gflop / 1e9) }
        if gflop >= 1e6 { return String(format: "%.1f PFLOP", gflop / 1e6) }
        if gflop >= 1e3 { return String(format: "%.2f TFLOP", gflop / 1e3) }
        return String(format: "%.1f GFLOP", gflop)
    }
}

extension Format {
    /// A length of time in the unit a person would use: "4.2 s", "3 min 20 s", "5.1 hours",
    /// "12 days", "3.4 years" (of 365.25 days).
    public static func duration(_ seconds: Double) -> String {
        let minute = 60.0, hour = 3600.0, day = 86_400.0, year = 365.25 * 86_400
        if seconds < minute { return String(format: "%.1f s", seconds) }
        if seconds < hour {
            let whole = Int(seconds.rounded())
            return "\(whole / 60) min \(whole % 60) s"
        }
        if seconds < 2 * day { return String(format: "%.1f hours", seconds / hour) }
        if seconds < year { return String(format: "%.0f days", seconds / day) }
        let years = seconds / year
        return years < 100 ? String(format: "%.1f years", years) : grouped(Int(years.rounded())) + " years"
    }
}

extension String {
    /// The text followed by spaces up to `width` characters, for a table column; a text that
    /// already fills the column gets one space, so two columns never run together.
    public func padded(to width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }

    /// The text preceded by spaces up to `width` characters (a right-aligned column); a longer
    /// text is returned unchanged.
    public func rightAligned(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

extension RGBImage {
    /// The image as coloured text for a true-colour terminal, two pixel rows per text line.
    ///
    /// Each character cell shows two pixels stacked vertically: the upper half block `▀` is
    /// drawn in the foreground colour (the top pixel) over the cell's background colour (the
    /// bottom pixel). Colours are set with 24-bit ANSI escapes, `ESC[38;2;R;G;Bm` for foreground
    /// and `ESC[48;2;R;G;Bm` for background, and every line ends with `ESC[0m` so the terminal's
    /// own colours come back. Since a cell is about twice as tall as wide, the image is scaled to
    /// `columns` pixels wide and keeps its proportions.
    ///
    /// Most modern terminals (iTerm2, Windows Terminal, GNOME Terminal, VS Code, kitty) support
    /// this; macOS Terminal.app shows approximate colours.
    ///
    /// ```swift
    /// print(image.terminalPreview(columns: 48))
    /// ```
    public func terminalPreview(columns: Int = 48) -> String {
        precondition(columns > 0, "columns must be positive")
        guard width > 0 && height > 0 else { return "" }
        // Pixel rows come in pairs; round the scaled height to an even number (at least 2).
        let rows = max(2, Int((Double(height) * Double(columns) / Double(width) / 2).rounded()) * 2)
        let small = resized(width: columns, height: rows)
        let escape = "\u{1B}["
        var text = ""
        for y in stride(from: 0, to: rows, by: 2) {
            for x in 0..<columns {
                let top = small[x, y], bottom = small[x, y + 1]
                text += "\(escape)38;2;\(top.red);\(top.green);\(top.blue)m"
                text += "\(escape)48;2;\(bottom.red);\(bottom.green);\(bottom.blue)m▀"
            }
            text += "\(escape)0m\n"
        }
        return text
    }
}

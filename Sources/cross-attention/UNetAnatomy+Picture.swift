import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The UNet's anatomy, drawn by code from its configuration: the down path on the left, the up
/// path on the right, the middle block at the bottom, the skip connections across, and where the
/// timestep and the text come in.
extension CrossAttention {
    func anatomyPicture(_ anatomy: UNetAnatomy) -> RGBImage {
        let width = 1040, boxWidth = 400, boxHeight = 74, rowHeight = 96, top = 250
        let rows = anatomy.down.count
        var image = RGBImage(width: width, height: top + (rows + 1) * rowHeight + 40, color: RGBColor(hex: 0xFAFAF7))
        let ink = RGBColor(hex: 0x1B1B1F), muted = RGBColor(hex: 0x6B6B78)
        let attention = RGBColor(hex: 0xFFE2C2), plain = RGBColor(hex: 0xDCE6F2), skip = RGBColor(hex: 0x3B7DD8)
        let title = BitmapFont(.giant), body = BitmapFont(.small), bold = BitmapFont(.mediumBold)

        image.drawText("Inside the UNet: \(anatomy.down.count) levels down, the middle, \(anatomy.up.count) levels up",
                       x: 20, y: 14, font: title, color: ink)
        // Where the timestep comes in: its sinusoid features for every t, as a heat map.
        let t = (0..<100).map { Float($0 * 10) }
        let features = TimestepEmbedding.sinusoid(t, dimension: anatomy.sinusoidWidth, flipSinToCos: true, downscaleFreqShift: 0)
        let heat = RGBImage(heatmap: features.scalars, width: anatomy.sinusoidWidth, height: t.count, colorMap: .magma)
            .resized(width: 320, height: 150, filter: .nearest)
        image.paste(heat, x: 20, y: 50)
        image.drawText("rows: t = 0 (top) ... 990; columns: \(anatomy.sinusoidWidth) features",
                       x: 20, y: 208, font: body, color: muted)
        let timeText = [
            "the timestep: t -> \(anatomy.sinusoidWidth) features [cos(t f_i), sin(t f_i)]",
            "-> 2 linear layers -> \(anatomy.timeEmbeddingWidth) numbers, added inside every ResNet",
            "the text: prompt -> text encoder -> \(Format.shape(anatomy.contextShape)),",
            "read by the cross-attention of every transformer (orange blocks)",
            "blue lines: skip connections, the outputs of a down block's layers",
            "handed across to the up block at the same resolution",
        ]
        for (i, line) in timeText.enumerated() {
            image.drawText(line, x: 370, y: 52 + i * 22 + (i >= 2 ? 12 : 0) + (i >= 4 ? 12 : 0), font: body,
                           color: i >= 4 ? skip : ink)
        }

        func drawBlock(_ block: UNetAnatomy.Block, x: Int, y: Int) {
            image.fillRectangle(x: x, y: y, width: boxWidth, height: boxHeight, color: block.transformers > 0 ? attention : plain)
            image.strokeRectangle(x: x, y: y, width: boxWidth, height: boxHeight, color: muted)
            image.drawText("\(block.name)   \(block.side)x\(block.side), \(block.channels) channels", x: x + 10, y: y + 8,
                           font: bold, color: ink)
            image.drawText(UNetAnatomy.summary(block), x: x + 10, y: y + 30, font: body, color: ink)
            image.drawText("out: \(Format.shape(block.shape))", x: x + 10, y: y + 50, font: body, color: muted)
        }
        let (left, right) = (30, width - 30 - boxWidth)
        for (i, block) in anatomy.down.enumerated() {
            let y = top + i * rowHeight
            drawBlock(block, x: left, y: y)
            if i < rows - 1 {                              // down the left side
                image.fillRectangle(x: left + boxWidth / 2 - 1, y: y + boxHeight, width: 3, height: rowHeight - boxHeight, color: muted)
            }
            // The skip connections across, to the up block at the same resolution.
            image.fillRectangle(x: left + boxWidth, y: y + boxHeight / 2 - 1, width: right - left - boxWidth, height: 3, color: skip)
        }
        for (i, block) in anatomy.up.enumerated() {
            let y = top + (rows - 1 - i) * rowHeight
            drawBlock(block, x: right, y: y)
            if i > 0 {                                     // up the right side
                image.fillRectangle(x: right + boxWidth / 2 - 1, y: y + boxHeight, width: 3, height: rowHeight - boxHeight, color: muted)
            }
        }
        let middleY = top + rows * rowHeight, middleX = (width - boxWidth) / 2
        drawBlock(anatomy.middle, x: middleX, y: middleY)
        let bottomRowY = top + (rows - 1) * rowHeight + boxHeight
        image.fillRectangle(x: left + boxWidth / 2 - 1, y: bottomRowY, width: 3, height: middleY + boxHeight / 2 - bottomRowY, color: muted)
        image.fillRectangle(x: left + boxWidth / 2 - 1, y: middleY + boxHeight / 2 - 1, width: middleX - left - boxWidth / 2, height: 3, color: muted)
        image.fillRectangle(x: right + boxWidth / 2 - 1, y: bottomRowY, width: 3, height: middleY + boxHeight / 2 - bottomRowY, color: muted)
        image.fillRectangle(x: middleX + boxWidth, y: middleY + boxHeight / 2 - 1, width: right + boxWidth / 2 - middleX - boxWidth, height: 3, color: muted)
        return image
    }
}

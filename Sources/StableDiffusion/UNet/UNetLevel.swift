/// One level of the UNet as training walks it: its ResNets, and the transformer after each of
/// them (none in a level without attention). The four block types are levels; `UNetDownBlock`
/// and `UNetUpBlock` hand out whichever they hold.
public protocol UNetLevel: Sendable {
    var resnets: [ResnetBlock2D] { get }
    var attentions: [Transformer2DModel] { get }
}

extension CrossAttnDownBlock2D: UNetLevel {}
extension CrossAttnUpBlock2D: UNetLevel {}

extension DownBlock2D: UNetLevel {
    public var attentions: [Transformer2DModel] { [] }
}

extension UpBlock2D: UNetLevel {
    public var attentions: [Transformer2DModel] { [] }
}

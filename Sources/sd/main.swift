import StableDiffusion
var g = TorchGenerator(seed: 42); print(Array(g.randn([1,4,2,5]).scalars.prefix(8)))
g = TorchGenerator(seed: 42); print(g.randn([3]).scalars)
g = TorchGenerator(seed: 7); let x = g.randn([1,4,64,64]).scalars; print(Array(x.prefix(4)), Array(x.suffix(4)))

// The vae-latents lesson is being written; see Lessons/.
print("vae-latents: not written yet")

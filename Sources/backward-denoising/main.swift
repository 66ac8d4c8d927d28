// The backward-denoising lesson is being written; see Lessons/.
print("backward-denoising: not written yet")

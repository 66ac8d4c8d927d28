// The cross-attention lesson is being written; see Lessons/.
print("cross-attention: not written yet")

"""fastText word vectors: the compact table (numpy), swener's Flair embeddings class, .npz/.bin/.vec files,
gensim training and its text, intrinsic checks."""

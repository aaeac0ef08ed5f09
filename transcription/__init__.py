"""Audio to text: audio decoding and checks, Vosk models and recognizers. Knows nothing of cases."""

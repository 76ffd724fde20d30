"""Real implementations of each capability (hands, faces, detector, VAD, ASR, TTS, LLM, vehicle) behind small interfaces."""

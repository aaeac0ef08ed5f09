"""Text to decision: normalisation, emergency rules, classifier, places, deadlines, delivery."""

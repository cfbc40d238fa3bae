// Placeholder: the Model lands with the format reader.

"""Text side of CRA: text encoders and the semantic structure graphs of question-answer pairs."""

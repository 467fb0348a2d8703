"""What the book's chapters show beyond the pipeline: chapter 2's views into a diffusion model
(``explain``), chapter 3's figures (``figures``), the results chapters' tables and computed
sentences (``report``) and chapter 7's prompt lab (``prompt_lab``)."""

"""A built-in table of machine-learning acronyms and their expansions.

Papers spell the same idea both ways ("LoRA" in the title, "low-rank adaptation" in the
abstract), and subscribers type either. The analyzer treats every spelling in one row as
the same term, in both directions: a keyword `LLM` matches "large language models" and a
keyword `large language model` matches "LLMs". Hyphen, space and solid spellings of an
expansion are equivalent anyway (see `analyzer`), so each expansion is listed once.

The table is for the field as a whole, not for any one profile: it lists acronyms a reader
of arXiv cs.LG / cs.CL / cs.CV / eess.AS would expect to be understood. Acronyms that are
ordinary English words or ambiguous across sub-fields (`CL` is continual or
contrastive learning, `SSL` self- or semi-supervised, `SVD` also Stable Video Diffusion)
are left out on purpose; users can add their own with `synonyms`.

The spelling of the acronym matters for one rule only: a method name that ends with a
listed acronym of three or more letters at a capital (`QLoRA`, `StyleGAN`, `DeepSeekMoE`)
also counts as that acronym, so the table keeps the usual capitalisation.
"""

from __future__ import annotations

#: acronym (usual capitalisation) -> expansions (any hyphen/space spelling)
ACRONYMS: dict[str, tuple[str, ...]] = {
    # language models and training recipes
    "LLM": ("large language model",),
    "LM": ("language model",),
    "MLLM": ("multimodal large language model", "multi-modal large language model"),
    "VLM": ("vision-language model", "vision language model", "visual language model"),
    "LVLM": ("large vision-language model",),
    "LMM": ("large multimodal model",),
    "VLA": ("vision-language-action model", "vision-language-action"),
    "SLM": ("small language model",),
    "PLM": ("pre-trained language model", "pretrained language model"),
    "MLM": ("masked language modeling", "masked language model"),
    "NLP": ("natural language processing",),
    "NLU": ("natural language understanding",),
    "NLG": ("natural language generation",),
    "NMT": ("neural machine translation",),
    "QA": ("question answering",),
    "VQA": ("visual question answering",),
    "RAG": ("retrieval-augmented generation", "retrieval augmented generation"),
    "CoT": ("chain-of-thought", "chain of thought"),
    "ICL": ("in-context learning",),
    "SFT": ("supervised fine-tuning",),
    "RLHF": ("reinforcement learning from human feedback",),
    "RLAIF": ("reinforcement learning from AI feedback",),
    "RLVR": ("reinforcement learning with verifiable rewards",),
    "DPO": ("direct preference optimization",),
    "PPO": ("proximal policy optimization",),
    "GRPO": ("group relative policy optimization",),
    "PRM": ("process reward model",),
    "MoE": ("mixture of experts", "mixture-of-experts"),
    "SMoE": ("sparse mixture of experts",),
    # efficient adaptation and compression
    "PEFT": ("parameter-efficient fine-tuning", "parameter efficient finetuning"),
    "LoRA": ("low-rank adaptation", "low rank adapter", "low-rank adapters"),
    "QLoRA": ("quantized low-rank adaptation",),
    "DoRA": ("weight-decomposed low-rank adaptation",),
    "PTQ": ("post-training quantization",),
    "QAT": ("quantization-aware training",),
    "KD": ("knowledge distillation",),
    "NAS": ("neural architecture search",),
    "PCA": ("principal component analysis",),
    # learning settings
    "RL": ("reinforcement learning",),
    "DRL": ("deep reinforcement learning",),
    "MARL": ("multi-agent reinforcement learning",),
    "IRL": ("inverse reinforcement learning",),
    "MBRL": ("model-based reinforcement learning",),
    "FL": ("federated learning",),
    "MTL": ("multi-task learning",),
    "UDA": ("unsupervised domain adaptation",),
    "OOD": ("out-of-distribution",),
    "ZSL": ("zero-shot learning",),
    "FSL": ("few-shot learning",),
    "HPO": ("hyperparameter optimization",),
    "SGD": ("stochastic gradient descent",),
    # architectures
    "GAN": ("generative adversarial network",),
    "VAE": ("variational autoencoder", "variational auto-encoder"),
    "VQ-VAE": ("vector quantized variational autoencoder",),
    "MAE": ("masked autoencoder",),
    "CNN": ("convolutional neural network",),
    "RNN": ("recurrent neural network",),
    "LSTM": ("long short-term memory",),
    "GNN": ("graph neural network",),
    "GCN": ("graph convolutional network",),
    "GAT": ("graph attention network",),
    "MLP": ("multilayer perceptron", "multi-layer perceptron"),
    "ViT": ("vision transformer",),
    "DiT": ("diffusion transformer",),
    "SSM": ("state space model", "state-space model"),
    "DNN": ("deep neural network",),
    "SNN": ("spiking neural network",),
    "PINN": ("physics-informed neural network",),
    "NeRF": ("neural radiance field",),
    "3DGS": ("3d gaussian splatting",),
    "DDPM": ("denoising diffusion probabilistic model",),
    "LDM": ("latent diffusion model",),
    "CLIP": ("contrastive language-image pre-training", "contrastive language-image pretraining"),
    "EBM": ("energy-based model",),
    # tasks and fields
    "TTS": ("text-to-speech", "speech synthesis"),
    "ASR": ("automatic speech recognition", "speech recognition"),
    "SER": ("speech emotion recognition",),
    "SLU": ("spoken language understanding",),
    "T2I": ("text-to-image",),
    "T2V": ("text-to-video",),
    "I2V": ("image-to-video",),
    "OCR": ("optical character recognition",),
    "NER": ("named entity recognition",),
    "KG": ("knowledge graph",),
    "HAR": ("human activity recognition",),
    "SLAM": ("simultaneous localization and mapping",),
    "XAI": ("explainable artificial intelligence", "explainable ai"),
    "AGI": ("artificial general intelligence",),
    "AI": ("artificial intelligence",),
    "ML": ("machine learning",),
    "DL": ("deep learning",),
}

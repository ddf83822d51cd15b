// SPDX-License-Identifier: MIT
// gguf_llama.mjs: load GGUF files written by `cm-train export --format gguf` in llama.cpp itself
// (node-llama-cpp's prebuilt CPU binaries, installed by tools/llama-node.sh) and print JSON
// lines: for each model, {"model", "ids"}: the ids llama.cpp's tokenizer gives TEXTFILE's
// content (to compare with `cm-tokenize encode --jsonl`), then for each prompt of PROMPTFILE
// (one per line) {"model", "prompt", "text"}: the prompt followed by llama.cpp's greedy
// completion of at most MAXTOKENS tokens (to compare with `cm-train complete --temperature 0`).
//
//   node tests/gguf_llama.mjs NPMDIR TEXTFILE PROMPTFILE MAXTOKENS MODEL.gguf...
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [npmDir, textFile, promptFile, maxTokens, ...models] = process.argv.slice(2);
if (!models.length) {
    console.error("usage: node gguf_llama.mjs NPMDIR TEXTFILE PROMPTFILE MAXTOKENS MODEL.gguf...");
    process.exit(2);
}
const entry = join(npmDir, "node_modules", "node-llama-cpp", "dist", "index.js");
const { getLlama, LlamaCompletion } = await import(pathToFileURL(entry).href);
const text = readFileSync(textFile, "utf8");
const prompts = readFileSync(promptFile, "utf8").split("\n").filter((p) => p.length > 0);

// One thread: on a loaded machine llama.cpp's spinning worker threads made each completion
// take seconds instead of milliseconds (measured: 20 ms with 1 thread, 5 s with 2).
const llama = await getLlama({ gpu: false, logLevel: "error", maxThreads: 1 });
for (const modelPath of models) {
    const model = await llama.loadModel({ modelPath });
    console.log(JSON.stringify({ model: modelPath, ids: Array.from(model.tokenize(text)) }));
    const context = await model.createContext({ contextSize: model.trainContextSize, threads: 1 });
    for (const prompt of prompts) {
        const sequence = context.getSequence();
        const completion = new LlamaCompletion({ contextSequence: sequence });
        const out = await completion.generateCompletion(prompt, {
            maxTokens: Number(maxTokens),
            temperature: 0,
        });
        console.log(JSON.stringify({ model: modelPath, prompt, text: prompt + out }));
        completion.dispose();
        sequence.dispose();
    }
    await context.dispose();
    await model.dispose();
}
await llama.dispose();

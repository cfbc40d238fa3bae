#include "runtime/recur.hpp"

#include <algorithm>

#include "formats/block_tensors.h"
#include "formats/recur_file.h"
#include "formats/tokenizer.h"
#include "ops/convert.h"
#include "ops/matmul.h"
#include "runtime/blocks/block.h"
#include "runtime/model_runtime.h"
#include "runtime/threads.h"

namespace recur {
namespace {

// Prefill chunk length the scratch arena is sized for (Mamba-2's default SSD chunk).
constexpr size_t kDefaultPrefillChunk = 256;

std::string DimsString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Every tensor the layers read must be in the file, shaped as the spec says, in a dtype the
// kernels take: weight matrices in f32/f16/bf16/q8_0, everything else in f32 or f64.
Status CheckTensors(const RecurFile& file) {
  RECUR_ASSIGN_OR_RETURN(std::vector<ExpectedTensor> expected, ExpectedTensors(file.model()));
  for (const ExpectedTensor& e : expected) {
    const TensorView* t = file.Find(e.name);
    if (t == nullptr) {
      if (e.optional) continue;
      return NotFound(file.path() + ": tensor '" + e.name + "' " + DimsString(e.shape) +
                      " is missing");
    }
    std::vector<int64_t> shape(t->shape, t->shape + t->rank);
    if (shape != e.shape) {
      return Corrupt(file.path() + ": tensor '" + e.name + "' has shape " + t->ShapeString() +
                     ", the model's spec needs " + DimsString(e.shape));
    }
    const bool float_matrix = t->dtype == DType::kF32 || t->dtype == DType::kF16 ||
                              t->dtype == DType::kBF16 || t->dtype == DType::kQ8_0;
    const bool ok = e.matrix ? float_matrix : t->dtype == DType::kF32;
    if (!ok) {
      return Unsupported(file.path() + ": tensor '" + e.name + "' is " +
                         std::string(DTypeName(t->dtype)) + "; " +
                         (e.matrix ? "weight matrices must be f32, f16, bf16 or q8_0"
                                   : "this parameter must be f32"));
    }
  }
  // A tensor in a layer's namespace that the layer's spec does not declare means the spec and
  // the weights disagree; it is refused rather than ignored (and never read unchecked).
  std::vector<std::string_view> names;
  names.reserve(expected.size());
  for (const ExpectedTensor& e : expected) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  for (const TensorView& t : file.tensors()) {
    if (t.name.rfind("layers.", 0) == 0 && !std::binary_search(names.begin(), names.end(), t.name)) {
      return Corrupt(file.path() + ": tensor '" + std::string(t.name) +
                     "' is not read by its layer's block as specified (a bias or tensor the spec "
                     "does not declare?)");
    }
  }
  return Status::Ok();
}

std::string TokenizerSummary(const fb::Model& m) {
  const fb::Tokenizer* t = m.tokenizer();
  if (t == nullptr || t->kind() == fb::TokenizerKind::None) return "none";
  std::string s = t->kind() == fb::TokenizerKind::Bytes ? "bytes" : "bpe";
  const size_t tokens = t->tokens() ? t->tokens()->size() : 0;
  const size_t merges = t->merges() ? t->merges()->size() : 0;
  if (tokens || merges) {
    s += " (" + std::to_string(tokens) + " tokens";
    if (t->kind() == fb::TokenizerKind::BPE) s += ", " + std::to_string(merges) + " merges";
    s += ")";
  }
  return s;
}

}  // namespace

Model::Model() = default;
Model::~Model() = default;

int Model::n_threads() const { return rt_ ? rt_->threads.size() : 1; }

const float* NormWeights::Find(const RecurFile& file, const std::string& name) {
  const TensorView* t = file.Find(name);
  return t != nullptr && t->dtype == DType::kF32 ? reinterpret_cast<const float*>(t->data) : nullptr;
}

Status Model::Build() {
  const fb::Model& m = file_->model();
  rt_ = std::make_unique<Runtime>(params_.n_threads);
  rt_->d_model = static_cast<size_t>(m.d_model());
  rt_->chunk = info_.prefill_chunk;
  if (m.input_kind() == fb::InputKind::Tokens) {
    RECUR_ASSIGN_OR_RETURN(const TensorView* embed, file_->Require("embed.weight"));
    rt_->embed = WeightViewOf(*embed);
  } else {
    RECUR_ASSIGN_OR_RETURN(const TensorView* in, file_->Require("input_proj.weight"));
    rt_->input_proj = WeightViewOf(*in);
    rt_->input_bias = NormWeights::Find(*file_, "input_proj.bias");
  }
  if (m.output_kind() == fb::OutputKind::Logits) {
    if (m.tie_embeddings()) {
      rt_->head = rt_->embed;
    } else {
      RECUR_ASSIGN_OR_RETURN(const TensorView* head, file_->Require("head.weight"));
      rt_->head = WeightViewOf(*head);
    }
  } else {
    RECUR_ASSIGN_OR_RETURN(const TensorView* out, file_->Require("output_proj.weight"));
    rt_->head = WeightViewOf(*out);
    rt_->head_bias = NormWeights::Find(*file_, "output_proj.bias");
  }
  rt_->final_norm = {m.final_norm(), m.final_norm_eps(), NormWeights::Find(*file_, "norm_f.weight"),
                     NormWeights::Find(*file_, "norm_f.bias")};
  const auto* layers = m.layers();
  const uint32_t n_layers = layers ? layers->size() : 0;
  size_t state_floats = 0, scratch_floats = 0;
  for (uint32_t i = 0; i < n_layers; ++i) {
    const fb::Layer& layer = *layers->Get(i);
    LayerContext ctx{*file_, m, layer, static_cast<int>(i), "layers." + std::to_string(i) + "."};
    auto block = MakeBlock(ctx);
    if (!block.ok()) {
      runnable_ = block.status();
      rt_.reset();
      return Status::Ok();  // Still a model to inspect.
    }
    Runtime::Layer l;
    l.norm = {layer.norm(), layer.norm_eps(), NormWeights::Find(*file_, ctx.prefix + "norm.weight"),
              NormWeights::Find(*file_, ctx.prefix + "norm.bias")};
    l.residual = layer.residual();
    l.state_offset = state_floats;
    const LayerPlan step = (*block)->Plan(1), prefill = (*block)->Plan(rt_->chunk);
    // Each layer's state starts on a 64-byte boundary so SIMD loads of it are aligned.
    state_floats += (step.state_bytes / sizeof(float) + 15) / 16 * 16;
    scratch_floats = std::max({scratch_floats, (step.scratch_bytes + 3) / 4, (prefill.scratch_bytes + 3) / 4});
    l.block = std::move(block).value();
    rt_->layers.push_back(std::move(l));
    info_.layers[i].runnable = true;
  }
  rt_->state_floats = state_floats;
  rt_->scratch_floats = (scratch_floats + 15) / 16 * 16;
  // MatMul's packing buffer, one per pool thread, sized for the widest matrix (prefill).
  size_t max_cols = 0;
  for (const TensorView& t : file_->tensors()) {
    if (t.rank == 2) max_cols = std::max(max_cols, static_cast<size_t>(t.shape[1]));
  }
  const size_t slot_floats = ops::MatMulScratchFloats(max_cols);
  if (!rt_->threads.ReserveSlotScratch(slot_floats)) {
    return Status(StatusCode::kOutOfMemory,
                  file_->path() + ": cannot allocate " +
                      std::to_string(slot_floats * sizeof(float) * rt_->threads.size()) +
                      " bytes of per-thread prefill scratch");
  }
  return Status::Ok();
}

Result<std::shared_ptr<const Model>> Model::Load(const std::string& path,
                                                 const ModelParams& params) {
  if (params.n_threads < 0) return InvalidArgument("n_threads must be 0 (all cores) or positive");
  RECUR_ASSIGN_OR_RETURN(auto file, RecurFile::Open(path, OpenOptions{.use_mmap = params.use_mmap}));
  RECUR_RETURN_IF_ERROR(CheckTensors(*file));

  std::shared_ptr<Model> model(new Model());
  model->file_ = file;
  model->params_ = params;
  const fb::Model& m = file->model();
  ModelInfo& info = model->info_;
  info.path = path;
  info.architecture = m.architecture()->str();
  info.format_version = m.format_version();
  info.d_model = m.d_model();
  info.vocab_size = m.vocab_size();
  info.token_input = m.input_kind() == fb::InputKind::Tokens;
  info.logits_output = m.output_kind() == fb::OutputKind::Logits;
  info.input = m.input_kind() == fb::InputKind::Tokens
                   ? "tokens (vocab " + std::to_string(m.vocab_size()) + ")"
                   : "frames of " + std::to_string(m.input_size()) + " features";
  info.output = m.output_kind() == fb::OutputKind::Logits
                    ? "logits (vocab " + std::to_string(m.vocab_size()) + ")"
                    : "features (" + std::to_string(m.output_size()) + ")";
  info.tokenizer = TokenizerSummary(m);
  info.file_bytes = file->file_size();
  info.mapped = file->mapped();
  info.prefill_chunk = kDefaultPrefillChunk;
  if (const auto* md = m.metadata()) {
    for (const fb::KeyValue* kv : *md) {
      info.metadata[kv->key()->str()] = kv->value() ? kv->value()->str() : "";
    }
  }

  for (const TensorView& t : file->tensors()) {
    TensorInfo ti;
    ti.name = std::string(t.name);
    ti.dtype = std::string(DTypeName(t.dtype));
    ti.shape.assign(t.shape, t.shape + t.rank);
    ti.numel = t.numel();
    ti.bytes = t.total_bytes();
    ti.data = t.data;
    info.params += static_cast<uint64_t>(ti.numel);
    info.bytes_by_dtype[ti.dtype] += ti.bytes;
    model->tensors_.push_back(std::move(ti));
  }
  if (auto expected = ExpectedTensors(m); expected.ok()) {
    for (const ExpectedTensor& e : *expected) {
      if (!e.matrix) continue;
      for (TensorInfo& t : model->tensors_) {
        if (t.name == e.name) t.matrix = true;
      }
    }
  }

  // The residual stream and the logits (or features) live in the session too.
  const size_t out = m.output_kind() == fb::OutputKind::Logits ? m.vocab_size() : m.output_size();
  const size_t io_floats = 2 * static_cast<size_t>(m.d_model()) + out;
  info.scratch_bytes_step = io_floats * sizeof(float);
  info.scratch_bytes_prefill = io_floats * info.prefill_chunk * sizeof(float);
  if (const auto* layers = m.layers()) {
    size_t max_step = 0, max_prefill = 0;
    for (uint32_t i = 0; i < layers->size(); ++i) {
      const fb::Layer& layer = *layers->Get(i);
      LayerInfo li;
      li.kind = BlockKindName(layer.block_type());
      li.summary = DescribeLayer(layer);
      const LayerPlan step = PlanLayer(m, layer, 1);
      const LayerPlan prefill = PlanLayer(m, layer, info.prefill_chunk);
      li.state_bytes = step.state_bytes;
      li.state_grows = step.state_grows;
      li.bytes_per_token = step.bytes_per_token;
      li.runnable = false;  // Set by the family issues as each block's Step lands.
      const std::string prefix = "layers." + std::to_string(i) + ".";
      for (const TensorInfo& t : model->tensors_) {
        if (t.name.compare(0, prefix.size(), prefix) == 0) li.params += static_cast<uint64_t>(t.numel);
      }
      info.state_bytes += step.state_bytes;
      max_step = std::max(max_step, step.scratch_bytes);
      max_prefill = std::max(max_prefill, prefill.scratch_bytes);
      info.layers.push_back(std::move(li));
    }
    // Layers run one after another, so the arena holds the largest layer's scratch.
    info.scratch_bytes_step += max_step;
    info.scratch_bytes_prefill += max_prefill;
  }
  if (const fb::Tokenizer* t = m.tokenizer(); t != nullptr && t->kind() != fb::TokenizerKind::None) {
    auto tokenizer = Tokenizer::FromFlatbuffer(*t);
    if (!tokenizer.ok()) {
      Status s = tokenizer.status();
      return s.Prepend(path + ": tokenizer: ");
    }
    model->tokenizer_ = std::move(tokenizer).value();
  }
  RECUR_RETURN_IF_ERROR(model->Build());
  return std::shared_ptr<const Model>(std::move(model));
}

const TensorInfo* Model::FindTensor(const std::string& name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Status Model::TensorToF32(const std::string& name, std::vector<float>* out) const {
  const TensorView* t = file_->Find(name);
  if (t == nullptr) return NotFound(info_.path + ": no tensor '" + name + "'");
  const size_t n = static_cast<size_t>(t->numel());
  out->resize(n);
  switch (t->dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0: {
      const ops::WeightView w = WeightViewOf(*t);
      for (size_t r = 0; r < w.rows; ++r) ops::DequantizeRow(w, r, out->data() + r * w.cols);
      return Status::Ok();
    }
    case DType::kF64: {
      const auto* d = reinterpret_cast<const double*>(t->data);
      for (size_t i = 0; i < n; ++i) (*out)[i] = static_cast<float>(d[i]);
      return Status::Ok();
    }
    default:
      return InvalidArgument("tensor '" + name + "' holds " + std::string(DTypeName(t->dtype)) +
                             " integers, not numbers to decode");
  }
}

}  // namespace recur

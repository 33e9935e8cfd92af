/* msr.h: the plain C ABI over libtorch that the Go package torch calls.
 *
 * Every function that can fail returns msr_err: NULL on success, else a
 * malloc'd message the caller frees with msr_free_err. The message travels
 * back in the same call, so no thread-local "last error" can be lost.
 * Messages of out-of-memory failures start with MSR_OOM_PREFIX.
 *
 * A msr_tensor owns one at::Tensor handle (a reference to shared storage);
 * msr_free_tensors drops handles in one call.
 */
#ifndef MSR_H
#define MSR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSR_OOM_PREFIX "[out of memory] "
#define MSR_MAX_DIMS 16

typedef struct msr_tensor_s* msr_tensor;
typedef struct msr_optim_s* msr_optim;
typedef struct msr_sparse_optim_s* msr_sparse_optim;
typedef char* msr_err;

enum msr_dtype { MSR_F32 = 0, MSR_F64 = 1, MSR_I64 = 2, MSR_BOOL = 3, MSR_I32 = 4, MSR_F16 = 5, MSR_BF16 = 6, MSR_U8 = 7 };
/* MSR_META: libtorch's meta device (shapes without data), for placement tests. */
enum msr_device_type { MSR_CPU = 0, MSR_CUDA = 1, MSR_META = 2 };

void msr_free_err(msr_err e);
void msr_free_tensors(msr_tensor* ts, int n);

/* Versions and runtime. */
void msr_version_compiled(int* major, int* minor, int* patch);
/* The libtorch distribution's version that the build found (1.13.1), or "unknown". */
const char* msr_torch_distribution(void);
/* Path of the first loaded shared library whose path contains fragment
   (libtorch_cpu.so for the runtime version check, libblas for `info`). */
msr_err msr_loaded_library(const char* fragment, char* buf, int cap);
msr_err msr_set_num_threads(int intra_op, int blas);
int msr_get_num_threads(void);
int msr_blas_threads(void); /* -1 when the BLAS exposes no thread control */
/* The kernels a run-time dispatching OpenBLAS chose for this CPU ("Haswell", "SkylakeX", ...), copied into buf;
   empty when the BLAS is not such an OpenBLAS. */
void msr_blas_core(char* buf, int len);
msr_err msr_manual_seed(uint64_t seed);
int msr_grad_enabled(void);
void msr_set_grad_enabled(int enabled);
/* cuda_built: libtorch_cuda is loaded in this process; devices: visible GPUs. */
void msr_cuda_info(int* cuda_built, int* devices);
msr_err msr_cuda_synchronize(int device);
msr_err msr_cuda_device_name(int device, char* buf, int cap);
msr_err msr_config(char* buf, int cap);
/* glibc mallopt M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (values <= 0 leave one alone); 1 on success. */
int msr_tune_allocator(long mmap_threshold, long trim_threshold);

/* Creation and transfer. */
msr_err msr_from_blob(const void* data, const int64_t* shape, int ndim, int dtype, msr_tensor* out);
msr_err msr_copy_to_host(msr_tensor t, void* dst, int64_t nbytes);
msr_err msr_info(msr_tensor t, int* dtype, int* ndim, int64_t* shape, int* device_type, int* device_index, int* requires_grad);

enum msr_create_op { MSR_ZEROS, MSR_ONES, MSR_FULL, MSR_RANDN, MSR_RAND, MSR_EMPTY, MSR_RANDINT };
msr_err msr_create(int op, const int64_t* shape, int ndim, int dtype, int device_type, int device_index, double a, double b, msr_tensor* out);
msr_err msr_arange(double start, double end, double step, int dtype, int device_type, int device_index, msr_tensor* out);
/* dtype < 0 keeps the dtype, device_type < 0 keeps the device. */
msr_err msr_to(msr_tensor a, int dtype, int device_type, int device_index, int non_blocking, int copy, msr_tensor* out);
msr_err msr_pin_memory(msr_tensor a, msr_tensor* out);

/* Elementwise and linear algebra. */
enum msr_unary_op {
  MSR_RELU, MSR_SIGMOID, MSR_TANH, MSR_EXP, MSR_LOG, MSR_NEG, MSR_ABS, MSR_SQRT, MSR_CLONE, MSR_DETACH,
  MSR_CONTIGUOUS, MSR_T, MSR_LOGICAL_NOT, MSR_SQUARE, MSR_ISFINITE_ALL, MSR_LOG_SIGMOID, MSR_GELU, MSR_SILU
};
msr_err msr_unary(int op, msr_tensor a, msr_tensor* out);

enum msr_binary_op {
  MSR_ADD, MSR_SUB, MSR_MUL, MSR_DIV, MSR_MATMUL, MSR_BMM, MSR_MM, MSR_EQ, MSR_NE, MSR_LT, MSR_LE, MSR_GT, MSR_GE,
  MSR_MAXIMUM, MSR_MINIMUM, MSR_POW, MSR_LOGICAL_AND, MSR_LOGICAL_OR
};
msr_err msr_binary(int op, msr_tensor a, msr_tensor b, msr_tensor* out);

enum msr_scalar_op {
  MSR_S_ADD, MSR_S_SUB, MSR_S_MUL, MSR_S_DIV, MSR_S_POW, MSR_S_EQ, MSR_S_NE, MSR_S_LT, MSR_S_LE, MSR_S_GT, MSR_S_GE,
  MSR_S_LEAKY_RELU, MSR_S_RSUB
};
msr_err msr_scalar(int op, msr_tensor a, double s, msr_tensor* out);

enum msr_reduce_op { MSR_SUM, MSR_MEAN, MSR_AMAX, MSR_AMIN, MSR_LOGSUMEXP, MSR_ARGMAX, MSR_NORM };
/* ndims == 0 reduces over all dimensions (argmax: flattened). */
msr_err msr_reduce(int op, msr_tensor a, const int64_t* dims, int ndims, int keepdim, msr_tensor* out);

enum msr_shape_op {
  MSR_RESHAPE, MSR_VIEW, MSR_PERMUTE, MSR_EXPAND, MSR_SQUEEZE, MSR_UNSQUEEZE, MSR_TRANSPOSE, MSR_NARROW,
  MSR_FLATTEN, MSR_REPEAT, MSR_SELECT
};
msr_err msr_shape(int op, msr_tensor a, const int64_t* args, int nargs, msr_tensor* out);

msr_err msr_cat(const msr_tensor* ts, int n, int64_t dim, int stack, msr_tensor* out);
msr_err msr_einsum(const char* equation, const msr_tensor* ts, int n, msr_tensor* out);
/* b may be NULL. */
msr_err msr_linear(msr_tensor x, msr_tensor w, msr_tensor b, msr_tensor* out);
msr_err msr_addmm(msr_tensor c, msr_tensor a, msr_tensor b, double beta, double alpha, msr_tensor* out);
msr_err msr_baddbmm(msr_tensor c, msr_tensor a, msr_tensor b, double beta, double alpha, msr_tensor* out);

enum msr_index_op { MSR_INDEX_SELECT, MSR_GATHER, MSR_SCATTER_ADD, MSR_INDEX_ADD };
/* src is used by scatter_add and index_add only. */
msr_err msr_index(int op, msr_tensor a, int64_t dim, msr_tensor index, msr_tensor src, msr_tensor* out);
/* dst.index_copy_(dim, index, src): in place, without autograd. */
msr_err msr_index_copy_(msr_tensor dst, int64_t dim, msr_tensor index, msr_tensor src);
msr_err msr_masked_fill(msr_tensor a, msr_tensor mask, double value, msr_tensor* out);
msr_err msr_masked_select(msr_tensor a, msr_tensor mask, msr_tensor* out);
msr_err msr_where(msr_tensor cond, msr_tensor a, msr_tensor b, msr_tensor* out);
msr_err msr_clamp(msr_tensor a, double lo, double hi, int has_lo, int has_hi, msr_tensor* out);
msr_err msr_softmax(msr_tensor a, int64_t dim, int log, msr_tensor* out);
msr_err msr_unique(msr_tensor a, msr_tensor* values, msr_tensor* inverse);

/* Neural-network functions. Optional tensors may be NULL. */
msr_err msr_layer_norm(msr_tensor x, const int64_t* normalized_shape, int n, msr_tensor w, msr_tensor b, double eps, msr_tensor* out);
msr_err msr_batch_norm(msr_tensor x, msr_tensor w, msr_tensor b, msr_tensor running_mean, msr_tensor running_var,
                       int training, double momentum, double eps, msr_tensor* out);
msr_err msr_dropout(msr_tensor x, double p, int training, msr_tensor* out);
msr_err msr_embedding(msr_tensor weight, msr_tensor indices, msr_tensor* out);
/* mode: 0 sum, 1 mean, 2 max. */
msr_err msr_embedding_bag(msr_tensor weight, msr_tensor indices, msr_tensor offsets, int mode, msr_tensor per_sample_weights, msr_tensor* out);
/* reduction: 0 none, 1 mean, 2 sum. */
msr_err msr_bce_with_logits(msr_tensor logits, msr_tensor target, msr_tensor weight, msr_tensor pos_weight, int reduction, msr_tensor* out);

/* Autograd and in-place updates (in-place ones run without grad). */
msr_err msr_set_requires_grad(msr_tensor a, int on);
msr_err msr_backward(msr_tensor loss, msr_tensor grad, int retain_graph);
/* *out is NULL when the tensor has no gradient. */
msr_err msr_grad(msr_tensor a, msr_tensor* out);
msr_err msr_zero_grad(const msr_tensor* ts, int n);
msr_err msr_copy_(msr_tensor dst, msr_tensor src);
enum msr_init_op { MSR_INIT_UNIFORM, MSR_INIT_NORMAL, MSR_INIT_CONSTANT, MSR_INIT_XAVIER_UNIFORM, MSR_INIT_XAVIER_NORMAL,
                   MSR_INIT_KAIMING_UNIFORM, MSR_INIT_KAIMING_NORMAL };
/* xavier: a = gain; kaiming: a = negative slope, fan_in mode, leaky_relu nonlinearity. */
msr_err msr_init(int op, msr_tensor a, double p1, double p2);
/* Scales the gradients of ts, and the tensors grads (gradients themselves, such as a sparse table's rows), so that
   their joint L2 norm is at most max_norm (no-op when max_norm <= 0); reports the norm before clipping. */
msr_err msr_clip_grad_norm(const msr_tensor* ts, int n, const msr_tensor* grads, int ngrads, double max_norm, double* total_norm);

/* Optimizers: PyTorch's update rules, state owned here so it can be exported by name. */
enum msr_optim_kind { MSR_SGD = 0, MSR_ADAM = 1, MSR_ADAMW = 2, MSR_ADAGRAD = 3 };
typedef struct {
  double lr, weight_decay;
  double momentum, dampening; int nesterov; /* SGD */
  double beta1, beta2, eps;                 /* Adam, AdamW; eps also Adagrad */
  double lr_decay, initial_accumulator;     /* Adagrad */
} msr_optim_options;
msr_err msr_optim_new(int kind, msr_optim* out);
void msr_optim_free(msr_optim o);
msr_err msr_optim_add_group(msr_optim o, const msr_tensor* params, int n, msr_optim_options opts);
msr_err msr_optim_step(msr_optim o);
msr_err msr_optim_zero_grad(msr_optim o);
msr_err msr_optim_set_lr(msr_optim o, int group, double lr);
msr_err msr_optim_get_lr(msr_optim o, int group, double* lr);
/* The k-th state tensor of parameter p in group g (an alias), and its step count. */
msr_err msr_optim_state(msr_optim o, int group, int param, int k, msr_tensor* out);
msr_err msr_optim_get_step(msr_optim o, int group, int param, int64_t* step);
/* Whether a group keeps its parameters and state in flat buffers (see optim.cpp). */
msr_err msr_optim_group_flat(msr_optim o, int group, int* flat);
msr_err msr_optim_set_step(msr_optim o, int group, int param, int64_t step);

/* A layer whose weights a linear head generates per row (meta_layer.cpp): for z [B, in], the head's
   weight [K, G] and bias [K] and the generator's outputs h [B, G], row b's layer is
   W = scale·reshape(weight[offset, +in·out)·h_b + bias[offset, +in·out]) [in, out] and
   c = weight[offset+in·out, +out]·h_b + bias[offset+in·out, +out]; y [B, out] = z·W + c, one autograd node. */
msr_err msr_generated_layer(msr_tensor z, msr_tensor head_weight, msr_tensor head_bias, msr_tensor h, int64_t in,
                            int64_t out, int64_t offset, double scale, msr_tensor* y);

/* Sparse embeddings (sparse.cpp). gather: the distinct rows that indices (int64, any shape) name, in order of
   first occurrence on the CPU (sorted elsewhere), copied into rows [U, dim], a new leaf that requires grad;
   ids [U] are their row numbers and inverse (indices' shape) each index's position among them. */
msr_err msr_embedding_gather(msr_tensor table, msr_tensor indices, msr_tensor* rows, msr_tensor* ids, msr_tensor* inverse);
/* The table size in bytes from which the gather and the row-wise updates visit rows in address order. */
int64_t msr_sparse_sorted_visit_bytes(void);
/* Row-wise optimizers over one table that does not require grad; a step updates only the rows it is given. */
enum msr_sparse_kind { MSR_SPARSE_SGD = 0, MSR_SPARSE_ADAM = 1, MSR_SPARSE_ADAGRAD = 2, MSR_SPARSE_ROWWISE_ADAGRAD = 3 };
msr_err msr_sparse_optim_new(int kind, msr_tensor table, msr_optim_options opts, msr_sparse_optim* out);
void msr_sparse_optim_free(msr_sparse_optim o);
/* ids [n] int64, grad [n, dim]; distinct = 0 sums the rows of repeated ids first. */
msr_err msr_sparse_optim_step(msr_sparse_optim o, msr_tensor ids, msr_tensor grad, int distinct);
msr_err msr_sparse_optim_set_lr(msr_sparse_optim o, double lr);
msr_err msr_sparse_optim_get_lr(msr_sparse_optim o, double* lr);
msr_err msr_sparse_optim_state(msr_sparse_optim o, int k, msr_tensor* out);
msr_err msr_sparse_optim_get_step(msr_sparse_optim o, int64_t* step);
msr_err msr_sparse_optim_set_step(msr_sparse_optim o, int64_t step);

/* Data-parallel training over libtorch's c10d (dist.cpp).
 * A msr_store is a TCPStore client (with is_server, also its host), optionally
 * under a key prefix; a msr_pg is a process group over one. Collectives wait
 * at most the group's timeout; their errors start with "rank R of W: ". */
typedef struct msr_store_s* msr_store;
typedef struct msr_pg_s* msr_pg;
enum msr_backend { MSR_GLOO = 0, MSR_NCCL = 1 };
enum msr_reduce { MSR_REDUCE_SUM = 0, MSR_REDUCE_MAX = 1, MSR_REDUCE_MIN = 2 };
/* Which backends this build compiled in (1) or not (0). */
void msr_dist_backends(int* gloo, int* nccl);
/* port 0 with is_server binds a free port (msr_store_port says which). */
msr_err msr_store_new(const char* host, int port, int is_server, int world_size, int64_t timeout_ms, const char* prefix, msr_store* out);
void msr_store_free(msr_store s);
int msr_store_port(msr_store s);
msr_err msr_store_set(msr_store s, const char* key, const void* value, int64_t n);
/* Waits up to timeout_ms for key; *value is malloc'd (free it with msr_free_buf). */
msr_err msr_store_get(msr_store s, const char* key, int64_t timeout_ms, void** value, int64_t* n);
void msr_free_buf(void* p);
/* Adds delta to the integer at key (0 if absent) and returns the sum; delta 0 reads it. */
msr_err msr_store_add(msr_store s, const char* key, int64_t delta, int64_t* out);
msr_err msr_store_check(msr_store s, const char* key, int* present);
msr_err msr_pg_new(int backend, msr_store s, int rank, int size, int64_t timeout_ms, msr_pg* out);
void msr_pg_free(msr_pg g);
/* Overwrites ts on every rank with root's, in flat buckets of at most bucket_bytes. */
msr_err msr_pg_broadcast(msr_pg g, const msr_tensor* ts, int n, int root, int64_t bucket_bytes);
msr_err msr_pg_allreduce(msr_pg g, msr_tensor t, int op);
/* A sum over the ranks that autograd sees: *out is the sum of t over the
   ranks, and its gradient reaches each rank's t summed over the ranks too
   (the backward pass all-reduces it), as synchronised batch statistics need.
   Every rank must call it, in the same order, forward and backward. */
msr_err msr_pg_allreduce_differentiable(msr_pg g, msr_tensor t, msr_tensor* out);
/* Concatenates t (any length along dim 0) from every rank in rank order; counts[rank] receives each length. */
msr_err msr_pg_allgather_cat(msr_pg g, msr_tensor t, msr_tensor* out, int64_t* counts);
msr_err msr_pg_barrier(msr_pg g);
/* Averages the dense gradients of params over the ranks, all-reducing flat
   buckets of at most bucket_bytes; a parameter without a gradient on every
   rank stays without one. flags (small integers: they travel in the
   gradients' dtype) are summed over the ranks in the same collective. */
msr_err msr_pg_average_grads(msr_pg g, const msr_tensor* params, int n, int64_t bucket_bytes, double* flags, int nflags);
/* msr_pg_average_grads overlapped with the backward pass (see dist.cpp):
   msr_reducer_begin before each backward pass, msr_reducer_finish after it. */
typedef struct msr_reducer_s* msr_reducer;
msr_err msr_reducer_new(msr_pg g, const msr_tensor* params, int n, int64_t bucket_bytes, msr_reducer* out);
void msr_reducer_free(msr_reducer r);
msr_err msr_reducer_begin(msr_reducer r);
/* *started_early: how many buckets the backward pass started. */
msr_err msr_reducer_finish(msr_reducer r, double* flags, int nflags, int* started_early);

/* TorchScript modules (script.cpp): torch::jit::Module built from C and saved for torch.jit.load, or loaded.
 * A tensor registered under a dotted path ("backbone.layers.0.weight") lands in submodules named by the path's
 * parts, so the module's state dict has the path as its key; every module has the "training" attribute (false). */
typedef struct msr_script_s* msr_script;
enum msr_script_slot { MSR_SCRIPT_PARAMETER = 0, MSR_SCRIPT_BUFFER = 1 };
/* A new empty module; name is its class name's last part. */
msr_err msr_script_new(const char* name, msr_script* out);
void msr_script_free(msr_script m);
/* Registers a copy of t (detached) under path as a parameter or a buffer (enum msr_script_slot). */
msr_err msr_script_register(msr_script m, const char* path, msr_tensor t, int kind);
/* Compiles TorchScript source (methods of the top module, `self` being it); a compile error names its line. */
msr_err msr_script_define(msr_script m, const char* src);
/* Saves the module with extra files (name, bytes, size) that torch.jit.load(_extra_files=) reads back. */
msr_err msr_script_save(msr_script m, const char* path, const char* const* extra_names, const char* const* extra_values,
                        const int64_t* extra_sizes, int n_extra);
/* Loads a saved module onto the CPU, in evaluation mode. */
msr_err msr_script_load(const char* path, msr_script* out);
/* The extra file name of a saved module; *value is malloc'd (free it with msr_free_buf), empty when absent. */
msr_err msr_script_extra_file(const char* path, const char* name, char** value, int64_t* size);
/* Calls a method on tensors, without gradients; it must return one tensor. */
msr_err msr_script_call(msr_script m, const char* method, const msr_tensor* in, int n, msr_tensor* out);
/* Every parameter, then every buffer, recursively: *names is their "\n"-terminated names and *tensors their
   handles (aliases), both malloc'd (free them with msr_free_buf; the handles with msr_free_tensors). */
msr_err msr_script_state(msr_script m, char** names, msr_tensor** tensors, int* n);

/* Benchmark support: runs `iters` additions of a and b in a C++ loop and returns the seconds taken. */
msr_err msr_bench_add_loop(msr_tensor a, msr_tensor b, int iters, double* seconds);
/* Benchmark support: one addition of a and b, its handle stored at *out; no error path, no Go bookkeeping. */
void msr_bench_add_once(msr_tensor a, msr_tensor b, msr_tensor* out);

#ifdef __cplusplus
}
#endif
#endif

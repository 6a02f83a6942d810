// The native selective-scan kernel alone, without Python: CPU time of the forward, the forward that stores
// checkpoints, and the backward, with random inputs in the SS2D configuration (one group, D, delta_bias, softplus,
// A = -(1..N)). Times are the calling thread's CPU time (fair on a shared machine), minimum over the repeats; with
// one thread the kernel runs on the calling thread. Compile it against a kernel source -- this branch's or an
// older one (`git show <commit>:ssmblocks/ops/_native/selective_scan.cpp > /tmp/old.cpp`) -- and compare:
//
//   g++ -O3 -std=c++17 -pthread -ffp-contract=fast -fno-math-errno -march=native -I. -o /tmp/scan_kernel
//       -DSCAN_SOURCE='"ssmblocks/ops/_native/selective_scan.cpp"' benchmarks/scan_kernel.cpp    (one line)
//   /tmp/scan_kernel [threads=1] [repeats=7] [with_z=0] [batch dim dstate len, default 2 360 16 4096]
//
// DUMP=file writes out, du, ddelta, dA, dB, dC, dD, dz, ddelta_bias as raw float32 (to compare two kernels).
#include SCAN_SOURCE

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>

namespace {

long long cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 1, repeats = argc > 2 ? atoi(argv[2]) : 7;
  const bool with_z = argc > 3 && atoi(argv[3]) != 0;
  int64_t b = 2, d = 360, n = 16, l = 4096;
  if (argc > 7) b = atoi(argv[4]), d = atoi(argv[5]), n = atoi(argv[6]), l = atoi(argv[7]);
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  auto random = [&](int64_t size, float scale) {
    std::vector<float> v(size);
    for (auto& x : v) x = normal(rng) * scale;
    return v;
  };
  auto u = random(b * d * l, 1.f), delta = random(b * d * l, .5f), B = random(b * n * l, 1.f),
       C = random(b * n * l, 1.f), z = random(b * d * l, 1.f), dout = random(b * d * l, 1.f);
  std::vector<float> A(d * n), D(d, 1.f), bias(d, -1.f);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < n; ++j) A[i * n + j] = -(j + 1.f);
  const ScanProblem p{b, d, l, n, 1, u.data(), delta.data(), A.data(), B.data(), C.data(), D.data(),
                      with_z ? z.data() : nullptr, bias.data(), 1, threads};
  std::vector<float> out(b * d * l), last(b * d * n), ckpt(b * d * ((l + kChunk - 1) / kChunk) * n);
  std::vector<float> du(b * d * l), ddelta(b * d * l), dA(d * n), dB(b * n * l), dC(b * n * l), dD(d),
      dz(b * d * l), dbias(d);
  long long fwd = 1LL << 62, fwd_ckpt = fwd, bwd = fwd;
  for (int r = 0; r < repeats; ++r) {
    const long long t0 = cpu_ns();
    forward_f32(p, out.data(), last.data(), nullptr);
    const long long t1 = cpu_ns();
    forward_f32(p, out.data(), last.data(), ckpt.data());
    const long long t2 = cpu_ns();
    backward_f32(p, ckpt.data(), BackwardOut{dout.data(), du.data(), ddelta.data(), dA.data(), dB.data(), dC.data(),
                                             dD.data(), with_z ? dz.data() : nullptr, dbias.data()});
    const long long t3 = cpu_ns();
    fwd = std::min(fwd, t1 - t0), fwd_ckpt = std::min(fwd_ckpt, t2 - t1), bwd = std::min(bwd, t3 - t2);
  }
  printf("(%ld, %ld, %ld, %ld), %d thread(s), CPU ms: forward %.1f, forward with checkpoints %.1f, backward %.1f, "
         "(forward with checkpoints + backward) / forward %.2f\n",
         long(b), long(d), long(n), long(l), threads, fwd / 1e6, fwd_ckpt / 1e6, bwd / 1e6,
         double(fwd_ckpt + bwd) / fwd);
  if (const char* path = getenv("DUMP")) {
    FILE* f = fopen(path, "wb");
    for (const auto* v : {&out, &du, &ddelta, &dA, &dB, &dC, &dD, &dz, &dbias}) fwrite(v->data(), 4, v->size(), f);
    fclose(f);
  }
}

// Trainable parameters (value, gradient, momentum, whether weight decay applies) and buffers
// (batch-norm running statistics), and saving/loading them as one flat host vector.
#pragma once

#include <pcnas/backend/concept.hpp>

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pcnas::nn {

template <class B>
struct parameter {
  std::string name;
  backend::index size = 0;
  bool decay = true;  // weight decay applies (convolution and linear weights, linear bias)
  backend::tensor_t<B> value{};
  backend::tensor_t<B> grad{};
  backend::tensor_t<B> momentum{};
};

template <class B>
struct buffer {
  std::string name;
  backend::index size = 0;
  backend::tensor_t<B> value{};
};

template <class B>
using parameter_list = std::vector<parameter<B>*>;
template <class B>
using buffer_list = std::vector<buffer<B>*>;

// Host values are double so that every backend is fed the same numbers; they are rounded to the
// backend's value type here.
template <class B>
void upload_values(B& b, std::span<const double> host, backend::tensor_t<B>& t) {
  std::vector<backend::value_type_t<B>> v(host.begin(), host.end());
  b.upload(std::span<const backend::value_type_t<B>>(v), t);
}

template <class B>
parameter<B> make_parameter(B& b, std::string name, std::span<const double> init, bool decay) {
  parameter<B> p;
  p.name = std::move(name);
  p.size = static_cast<backend::index>(init.size());
  p.decay = decay;
  p.value = b.allocate(p.size);
  p.grad = b.allocate(p.size);
  p.momentum = b.allocate(p.size);
  upload_values(b, init, p.value);
  b.fill(p.size, backend::value_type_t<B>(0), p.grad);
  b.fill(p.size, backend::value_type_t<B>(0), p.momentum);
  return p;
}

template <class B>
buffer<B> make_buffer(B& b, std::string name, backend::index size, double value) {
  buffer<B> s;
  s.name = std::move(name);
  s.size = size;
  s.value = b.allocate(size);
  b.fill(size, backend::value_type_t<B>(value), s.value);
  return s;
}

// What a flat state vector holds, in order: every parameter's value, then (if asked) every
// parameter's momentum, then every buffer. The lists fix the order; a module lists its
// parameters and buffers in a fixed order.
struct state_options {
  bool momentum = false;
};

template <class B>
backend::index state_size(std::span<parameter<B>* const> params, std::span<buffer<B>* const> buffers,
                          state_options o = {}) {
  backend::index n = 0;
  for (auto* p : params) n += p->size * (o.momentum ? 2 : 1);
  for (auto* s : buffers) n += s->size;
  return n;
}

template <class B>
std::vector<backend::value_type_t<B>> save_state(B& b, std::span<parameter<B>* const> params,
                                                 std::span<buffer<B>* const> buffers,
                                                 state_options o = {}) {
  using T = backend::value_type_t<B>;
  std::vector<T> out(static_cast<std::size_t>(state_size<B>(params, buffers, o)));
  std::size_t at = 0;
  auto take = [&](const backend::tensor_t<B>& t, backend::index n) {
    b.download(t, std::span<T>(out.data() + at, static_cast<std::size_t>(n)));
    at += static_cast<std::size_t>(n);
  };
  for (auto* p : params) take(p->value, p->size);
  if (o.momentum)
    for (auto* p : params) take(p->momentum, p->size);
  for (auto* s : buffers) take(s->value, s->size);
  return out;
}

template <class B>
void load_state(B& b, std::span<parameter<B>* const> params, std::span<buffer<B>* const> buffers,
                std::span<const backend::value_type_t<B>> state, state_options o = {}) {
  using T = backend::value_type_t<B>;
  const auto expected = state_size<B>(params, buffers, o);
  if (static_cast<backend::index>(state.size()) != expected)
    throw std::invalid_argument("pcnas::nn::load_state: the state holds " + std::to_string(state.size()) +
                                " values but these parameters and buffers need " +
                                std::to_string(expected));
  std::size_t at = 0;
  auto put = [&](backend::tensor_t<B>& t, backend::index n) {
    b.upload(std::span<const T>(state.data() + at, static_cast<std::size_t>(n)), t);
    at += static_cast<std::size_t>(n);
  };
  for (auto* p : params) put(p->value, p->size);
  if (o.momentum)
    for (auto* p : params) put(p->momentum, p->size);
  for (auto* s : buffers) put(s->value, s->size);
}

}  // namespace pcnas::nn

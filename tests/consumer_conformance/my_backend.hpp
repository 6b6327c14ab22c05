// A downstream team's backend: the library's Eigen backend on one thread, under its own name.
// What makes it a backend is the contract, checked by the conformance kit.
#pragma once

#include <pcnas/backend/eigen.hpp>

#include <string>

namespace my {

class backend : public pcnas::backend::eigen::backend {
 public:
  backend() : pcnas::backend::eigen::backend({.threads = 1}) {}
  std::string name() const { return "my::backend on " + pcnas::backend::eigen::backend::name(); }
};

}  // namespace my

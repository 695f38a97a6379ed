#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

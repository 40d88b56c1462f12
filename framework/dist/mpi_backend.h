// The Open MPI backend of Communicator (mpi_backend.cpp), private to framework/dist. Built with
// SHRINK_HAVE_MPI; without it, make_mpi_world refuses.
#pragma once
#include <memory>

#include "framework/dist/communicator.h"

namespace shrink::dist {

// True when the environment says mpirun started this process (and the build has MPI).
bool launched_by_mpirun();
// MPI_Init (thread level: funneled, only the main thread calls MPI) and the world communicator.
std::shared_ptr<Communicator> make_mpi_world(int* argc, char*** argv);
void finalize_mpi();

}  // namespace shrink::dist
